"""All six phases (node API): the operator's ``noosphere.tasks.submit`` and
``noosphere.tasks.submission`` JSON-RPC methods over the node's ``submit.Submitter`` (seen
through ``Submissions``: exactly what these methods use)."""

from __future__ import annotations

from typing import Protocol

from noosphere.errors import Unauthorized
from noosphere.protocol.api import Submission, SubmissionGetParams, SubmitParams
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .rpc import CallContext, JsonRpcDispatcher


class Submissions(Protocol):
    """Starts a submission (recruit, pay, send, check, rate) and reports on it."""

    def submit(self, params: SubmitParams) -> Submission: ...

    def get(self, submission_id: str) -> Submission: ...


def register_submit_api(dispatcher: JsonRpcDispatcher, submitter: Submissions) -> None:
    def operator(ctx: CallContext) -> None:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise Unauthorized("Unauthorized: only the node's operator submits")

    async def submit(params: SubmitParams, ctx: CallContext) -> Submission:
        operator(ctx)
        return submitter.submit(params)

    async def submission(params: SubmissionGetParams, ctx: CallContext) -> Submission:
        operator(ctx)
        return submitter.get(params.id)

    dispatcher.register("noosphere.tasks.submit", SubmitParams, submit, authenticated=True)
    dispatcher.register(
        "noosphere.tasks.submission", SubmissionGetParams, submission, authenticated=True
    )
