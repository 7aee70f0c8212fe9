from chalice import Blueprint
bp = Blueprint(__name__)
@bp.on_dynamodb_record(stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/x/stream/2020", batch_size=100, starting_position="TRIM_HORIZON")
def process(event):
    return {}
