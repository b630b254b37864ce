"""How each kind of refusal reads over HTTP (the domain's errors carry no HTTP themselves)."""

from __future__ import annotations

import pytest

from oms.api.preconditions import PreconditionFailed
from oms.domain.errors import Conflict, DomainError, IllegalTransition, InsufficientStock, Invalid, NotFound
from oms.http import reading


@pytest.mark.parametrize(
    ("error", "status", "problem_type"),
    [
        (NotFound("x"), 404, "/problems/not-found"),
        (Invalid("x"), 422, "/problems/invalid"),
        (InsufficientStock("x"), 409, "/problems/insufficient-stock"),
        (IllegalTransition("x"), 409, "/problems/illegal-transition"),
        (Conflict("x"), 409, "/problems/conflict"),
        (PreconditionFailed("x"), 412, "/problems/precondition-failed"),
        (DomainError("x"), 409, "about:blank"),
    ],
)
def test_each_refusal_reads_as_its_status_and_problem_type(error, status, problem_type):
    assert (reading(error).status, reading(error).type_) == (status, problem_type)


def test_the_domain_errors_know_no_http():
    for kind in (DomainError, NotFound, Invalid, Conflict, InsufficientStock, IllegalTransition):
        assert not {"status", "title", "type_"} & set(vars(kind))
