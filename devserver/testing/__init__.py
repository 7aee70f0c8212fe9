"""What tests need, importable from anywhere (tests, bench, reliability, a user's own tests); nothing
here ships to Lambda and nothing outside tests/ imports tests/.

- `pipeline.LocalPipeline`: a request's whole lifecycle in-process on moto's in-memory backend.
- `fixtures`: the pytest plugin with `local_stack` (the real `chalice local` on moto and DynamoDB Local).
- `api.Api`: an HTTP client for the local API (PUT, GET, retry, wait until finished).
- `fake_api.FakeApi`: an in-process fake of the API's operator routes, for the ops CLI's tests.
- `browser`, `console_page.ConsolePage`: headless Chromium (Selenium, Debian's chromedriver) and the
  local console (/_local/) as it shows in it, for the console's browser tests and its screenshot.
- `fakes`, `events`, `streams`, `logic`: test doubles, AWS-shaped stream events, an in-memory stream,
  fake business logic for fault and reliability runs.
"""
