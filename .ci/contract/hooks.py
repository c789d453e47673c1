"""Schemathesis hooks for `.ci/contract-check`: each interface's own bearer token.

The website's token on /v1, an operator's on /admin/v1 (each is refused on the other's), none
on the public routes, so that schemathesis's own checks (`ignored_auth` among them) see the
authentication the document states.
"""

import os

import schemathesis


def _bearer(case, token):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.auth().apply_to(path_regex="^/admin/v1/")
class OperatorToken:
    def get(self, case, context):
        return os.environ["CONTRACT_ADMIN_TOKEN"]

    def set(self, case, data, context):
        _bearer(case, data)


@schemathesis.auth().apply_to(path_regex="^/v1/").skip_for(path_regex="^/v1/callbacks/")
class WebsiteToken:
    def get(self, case, context):
        return os.environ["CONTRACT_TOKEN"]

    def set(self, case, data, context):
        _bearer(case, data)


# What the document does not promise, and no HTTP server could: these cases are not generated.

_TOKEN = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _declared(context, location):
    operation = context.operation
    if operation is None:
        return None
    parameters = operation.headers if location == "header" else operation.query
    return {p.name.lower() for p in parameters}


@schemathesis.hook
def filter_headers(context, headers):
    """Headers HTTP can carry (a token for a name; printable ASCII or tab for a value: anything
    else is refused by the HTTP layer before payoutd sees it), and only those the operation
    declares: the document says nothing of others, and servers ignore unknown headers."""
    if not headers:
        return True
    declared = _declared(context, "header")
    for name, value in headers.items():
        if not name or not set(name) <= _TOKEN or not isinstance(value, str):
            return False
        if any(not (" " <= c <= "~" or c == "\t") for c in str(value)):
            return False
        if declared is not None and name.lower() not in declared:
            return False
    return True


@schemathesis.hook
def filter_query(context, query):
    """Only the query parameters the operation declares, each once, as text or a number: the
    document does not say an unknown one is refused, and a query string cannot tell `null`
    from an empty value, nor an array from the parameter given twice."""
    if not query:
        return True
    declared = _declared(context, "query")
    if declared is not None and any(name.lower() not in declared for name in query):
        return False
    return all(isinstance(v, (str, int, float, bool)) for v in query.values())


# The stateful run (positive data only) follows links from a credit or a withdrawal to the
# operations that take its ids; random amounts and currencies are almost always refused, so
# every other body is pointed at the user the check funded, in a currency and amount that
# pass. Never in the run with invalid data: it would turn invalid bodies valid.

_FUNDED = os.environ.get("CONTRACT_FUNDED_USER")
_calls = {"n": 0}


def _every_other():
    _calls["n"] += 1
    return _FUNDED is not None and _calls["n"] % 2 == 0


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or not isinstance(body, dict) or not _every_other():
        return body
    if (operation.method.upper(), operation.path) == ("POST", "/v1/withdrawals"):
        body.update(
            user_id=_FUNDED,
            amount="10.00",
            currency="EUR",
            convert_to="BTC",
            address="bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            tag=None,
        )
    elif (operation.method.upper(), operation.path) == ("POST", "/v1/users/{user_id}/credits"):
        body.update(currency="EUR", amount="1.00")
    return body


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    """Path parameters a URL can carry as such: text without `?` or `#` (which would end the
    path). Invalid data of another JSON type is sent as its text (`null` for None), which can
    be a perfectly valid id."""
    return all(isinstance(v, str) and "?" not in v and "#" not in v for v in (path_parameters or {}).values())
