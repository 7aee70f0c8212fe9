"""The example business logic: a restaurant order taker."""
import pytest

from chalicelib.errors import RejectedRequest
from chalicelib.orders import take_order


def test_a_valid_order_counts_portions_and_kitchen_time():
    result = take_order({"table": 12, "note": "no basil",
                         "items": [{"dish": "margherita", "qty": 2}, {"dish": "tiramisu", "qty": 3},
                                   {"dish": "margherita", "qty": 1}]})

    assert result == {"table": 12, "portions": {"margherita": 3, "tiramisu": 3},
                      "totalPortions": 6, "readyInMinutes": 12}


@pytest.mark.parametrize("order, message", [
    ({"table": 1, "items": [{"dish": "hawaiian", "qty": 1}]}, "unknown dish 'hawaiian'"),
    ({"table": 0, "items": [{"dish": "tiramisu", "qty": 1}]}, "table must be"),
    ({"table": 501, "items": [{"dish": "tiramisu", "qty": 1}]}, "table must be"),
    ({"table": True, "items": [{"dish": "tiramisu", "qty": 1}]}, "table must be"),
    ({"table": "7", "items": [{"dish": "tiramisu", "qty": 1}]}, "table must be"),
    ({"table": 7, "items": []}, "items must be"),
    ({"table": 7}, "items must be"),
    ({"table": 7, "items": ["tiramisu"]}, "item 1 must be an object"),
    ({"table": 7, "items": [{"dish": "tiramisu", "qty": 0}]}, "qty of tiramisu"),
    ({"table": 7, "items": [{"dish": "tiramisu", "qty": 51}]}, "qty of tiramisu"),
    ({"table": 7, "items": [{"dish": "tiramisu", "qty": 1.5}]}, "qty of tiramisu"),
    ({"table": 7, "items": [{"dish": "tiramisu", "qty": 1}], "note": 5}, "note must be text"),
])
def test_an_order_that_can_never_be_served_is_rejected_with_the_reason(order, message):
    with pytest.raises(RejectedRequest, match=message):
        take_order(order)
