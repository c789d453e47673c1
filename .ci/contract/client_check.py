"""A client generated from the document by openapi-python-client, used as a merchant would.

1. The README's quick start against the live service: credit, withdraw, read it until the
   simulator's callback confirms it, and the balances before and after.
2. What a later version may send that this document does not list: a new problem `code`, a new
   withdrawal `status`, an HTTP status no operation documents. The client must still read them.
3. A real `429` from the service's rate limiter, read as a problem with `Retry-After`.

Run by `.ci/contract-check`, with the generated package `payoutd_client` on PYTHONPATH and
CONTRACT_BASE_URL, CONTRACT_TOKEN set.
"""

import os
import time

import httpx

from payoutd_client import AuthenticatedClient, Client
from payoutd_client.api.balances import credit_user, get_user_balances
from payoutd_client.api.callbacks import receive_coins_paid_callback
from payoutd_client.api.withdrawals import create_withdrawal, get_withdrawal, list_withdrawals
from payoutd_client.models import (
    CreditRequest,
    ErrorCode,
    Problem,
    WithdrawalRequest,
    WithdrawalStatus,
    WithdrawalView,
)
from payoutd_client.models.receive_coins_paid_callback_body import ReceiveCoinsPaidCallbackBody

BASE = os.environ["CONTRACT_BASE_URL"]
TOKEN = os.environ["CONTRACT_TOKEN"]
ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


def eur(balances):
    return next(b for b in balances.balances if b.currency == "EUR")


def quick_start():
    # Every answer must be one the document lists.
    client = AuthenticatedClient(base_url=BASE, token=TOKEN, raise_on_unexpected_status=True)

    # 1. The website credits user u1 with 250 EUR.
    credited = credit_user.sync_detailed(
        user_id="u1",
        client=client,
        body=CreditRequest(currency="EUR", amount="250.00", reference="deposit-1"),
    )
    assert credited.status_code == 201, credited
    assert credited.parsed.balance.available == "250.00", credited.parsed

    # 2. u1 asks for 100 EUR paid out in BTC: held, sent to CoinsPaid, answered "processing".
    created = create_withdrawal.sync_detailed(
        client=client,
        idempotency_key="demo-withdrawal-1",
        body=WithdrawalRequest(
            user_id="u1", amount="100.00", currency="EUR", convert_to="BTC", address=ADDRESS
        ),
    )
    assert created.status_code == 201, created
    withdrawal = created.parsed
    assert isinstance(withdrawal, WithdrawalView), withdrawal
    assert withdrawal.status == WithdrawalStatus.PROCESSING, withdrawal.status

    # 3. 100.00 is held until CoinsPaid's callback says what happened.
    held = eur(get_user_balances.sync(user_id="u1", client=client))
    assert (held.available, held.held) == ("150.00", "100.00"), held

    # 4. The simulator posts a signed "confirmed" callback: the hold is debited.
    deadline = time.monotonic() + 30
    while withdrawal.status != WithdrawalStatus.CONFIRMED:
        assert time.monotonic() < deadline, f"still {withdrawal.status}"
        time.sleep(0.5)
        withdrawal = get_withdrawal.sync(id=withdrawal.id, client=client)
    page = list_withdrawals.sync(client=client, user_id="u1")
    assert [w.id for w in page.data] == [withdrawal.id], page
    assert withdrawal.sent is not None and withdrawal.error is None, withdrawal
    settled = eur(get_user_balances.sync(user_id="u1", client=client))
    assert (settled.available, settled.held, settled.total) == ("150.00", "0.00", "150.00"), settled
    print("generated client: the README's quick start passed")
    return httpx.get(
        f"{BASE}/v1/withdrawals/{withdrawal.id}", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()


def later_versions(withdrawal_json):
    """Answers a later version may give, through the same client, from a stand-in server."""
    future_withdrawal = {**withdrawal_json, "status": "on_hold_added_later"}
    future_problem = {
        "type": "/problems/a_code_added_later",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "a rule this version does not know",
        "code": "a_code_added_later",
    }

    def answer(request):
        if request.method == "POST":
            return httpx.Response(422, json=future_problem, headers={"content-type": "application/problem+json"})
        if request.url.path == "/v1/withdrawals":
            return httpx.Response(451, json={**future_problem, "status": 451})
        return httpx.Response(200, json=future_withdrawal)

    client = AuthenticatedClient(
        base_url="http://payoutd.invalid",
        token=TOKEN,
        httpx_args={"transport": httpx.MockTransport(answer)},
    )
    refused = create_withdrawal.sync_detailed(
        client=client,
        idempotency_key="later",
        body=WithdrawalRequest(user_id="u1", amount="1.00", currency="EUR", convert_to="BTC", address=ADDRESS),
    )
    assert isinstance(refused.parsed, Problem), refused
    assert refused.parsed.code == "a_code_added_later", refused.parsed.code
    read = get_withdrawal.sync(id=withdrawal_json["id"], client=client)
    assert isinstance(read, WithdrawalView) and read.status == "on_hold_added_later", read
    # An HTTP status no operation documents: no exception, nothing parsed.
    unknown = list_withdrawals.sync_detailed(client=client)
    assert unknown.status_code == 451 and unknown.parsed is None, unknown
    print("generated client: a new code, a new withdrawal status and a new HTTP status are read")


def rate_limited():
    """Unsigned callbacks count against their source address (`abuse.callback_*`): past the
    burst the service answers 429 problem+json with Retry-After."""
    client = Client(base_url=BASE, raise_on_unexpected_status=True)
    body = ReceiveCoinsPaidCallbackBody.from_dict({"id": 1, "foreign_id": "pd-x", "status": "confirmed"})
    for _ in range(1000):
        answer = receive_coins_paid_callback.sync_detailed(
            client=client, body=body, x_processing_key="not-the-key", x_processing_signature="00"
        )
        if answer.status_code == 429:
            assert isinstance(answer.parsed, Problem), answer
            assert answer.parsed.code == ErrorCode.RATE_LIMITED, answer.parsed.code
            assert int(answer.headers["retry-after"]) >= 1, answer.headers
            print("generated client: a 429 is read as rate_limited with Retry-After")
            return
        assert answer.status_code == 401, answer
    raise AssertionError("no 429 after 1000 unsigned callbacks")


if __name__ == "__main__":
    later_versions(quick_start())
    rate_limited()
