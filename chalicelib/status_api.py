from chalice import Blueprint
bp = Blueprint(__name__)
@bp.route("/requests/{request_id}", methods=["GET"])
def get_request(request_id):
    return {}
