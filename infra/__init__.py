"""What builds and deploys the system: the CloudFormation merged into `chalice package`, the base stack
and the `chalice deploy` hook. Never in the Lambda zip (Chalice ships app.py, chalicelib/ and vendor/)."""
