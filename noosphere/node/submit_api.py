"""All six phases (node API): the operator's ``noosphere.tasks.submit`` and
``noosphere.tasks.submission`` JSON-RPC methods over the node's ``submit.Submitter``."""

from __future__ import annotations

from noosphere.protocol import ErrorCode, RpcError
from noosphere.protocol.api import Submission, SubmissionGetParams, SubmitParams
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .rpc import CallContext, JsonRpcDispatcher
from .submit import Submitter


def register_submit_api(dispatcher: JsonRpcDispatcher, submitter: Submitter) -> None:
    def operator(ctx: CallContext) -> None:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise RpcError(ErrorCode.UNAUTHORIZED, "Unauthorized: only the node's operator submits")

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
