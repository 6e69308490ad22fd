"""All six phases (errors): the one tree every noosphere exception belongs to.

Catch ``NoosphereError`` for anything noosphere raises on purpose, or a branch for one kind of
failure. Each leaf keeps the built-in base it always had (``ValueError``, ``RuntimeError``, ...)
beside its branch, so code that caught the built-in still does. The branches and the request
errors are defined here; the other leaves live next to the code that raises them (module in
brackets). ``protocol/wire_errors.py`` maps every ``RequestError`` to the wire in one table: the
JSON-RPC code, message and data (an A2A ``google.rpc.ErrorInfo``), and the HTTP status of the
HTTP+JSON binding.

    NoosphereError
    ├── RequestError ............ a request the node will not serve (mapped to the wire)
    │   ├── InvalidParams
    │   ├── Unauthorized
    │   │   └── AuthError ....... credentials presented but not valid [node.auth]
    │   ├── RateLimited ......... over a quota; ``retry_after_s``
    │   ├── PaymentRequired ..... a priced agent; ``terms`` (the escrow to open)
    │   ├── TaskNotFound
    │   ├── TaskNotCancelable
    │   ├── UnsupportedOperation
    │   ├── ContentTypeNotSupported
    │   ├── CardNotFound
    │   ├── ExtendedCardNotConfigured
    │   ├── ServerError ......... the node failed at its own part (JSON-RPC internal error)
    │   └── RpcError ............ a JSON-RPC error by its code: transport errors, and a remote
    │                             node's answer as received [protocol.jsonrpc]
    ├── InvalidData ............. bytes or values from outside that do not check out
    │   ├── EncodingError ....... not canonical JSON / not a valid ABE encoding
    │   ├── SignatureError ...... [protocol.jws]
    │   ├── InvalidPeerId ....... [protocol.identity]
    │   ├── CardError ........... [protocol.card]
    │   │   └── CardSignatureError
    │   ├── EnvelopeRejected .... a gossip envelope failed a check [protocol.envelope]
    │   ├── FeedbackError ....... [protocol.feedback]
    │   ├── AttestationError .... [protocol.attestation]
    │   ├── InvalidAuthorization  a payment authorization [protocol.payment]
    │   ├── SealError ........... a sealed task part [protocol.sealing]
    │   ├── V03TranslationError . an A2A v0.3 message [protocol.a2a_v03]
    │   └── EvalError ........... a MARS evaluation set [mars.evaluation]
    ├── SetupError .............. the operator's files, settings or home are not usable
    │   ├── ConfigError ......... [node.config]
    │   ├── AgentFileError ...... [agents.spec]
    │   ├── NodeStartError ...... [node.daemon]
    │   ├── HomeInUse ........... [node.home]
    │   ├── KeyFileError ........ [securefile]
    │   ├── StoreError .......... [node.store]
    │   └── DemoError ........... [cli.demo]
    ├── CryptoError ............. CP-ABE: keys, policies, ciphertexts
    │   ├── AbeError ............ [abe.fame]
    │   │   ├── NotAuthorized ... the attributes do not satisfy the policy
    │   │   └── EnvelopeError ... [abe.envelope]
    │   ├── PolicyError ......... [abe.policy]
    │   ├── AuthorityError ...... [abe.authority]
    │   └── SealedPartError ..... [abe.sealed]
    ├── AgentError .............. an agent at work
    │   ├── ToolError ........... [agents.tools.base]
    │   │   ├── MissingArguments
    │   │   └── ToolTimeout
    │   ├── NoToolFits .......... [agents.planner]
    │   └── AgentMemoryError .... [agents.memory]
    ├── ModelError .............. the shared models
    │   ├── LlmError ............ [models.llm]
    │   └── EmbeddingError ...... [models.embedding]
    ├── LedgerError ............. a ledger call failed or reverted [ledger._transactions]
    │   ├── CommitmentMismatch .. the agent committed another result [node.settlement]
    │   └── ResultNotCommitted .. a paid result's hash could not go on chain [node.settlement]
    ├── ServiceError ............ another process or service did not do its part
    │   ├── P2PError ............ libp2p [node.p2p]
    │   ├── NodeUnreachable ..... a node's RPC port [node.client]
    │   ├── EgressRefused ....... an address the egress rule refuses [node.egress]
    │   ├── LaunchError ......... a node child process [node.launcher]
    │   ├── ScalerError ......... a worker scaler [orchestration.scalers]
    │   ├── ChainError .......... the local chain process [ledger.chain]
    │   └── LocalLlmError ....... the local LLM server [models.local_llm]
    └── _Failed ................. one submission attempt ended badly (internal) [node.submit]
"""

from __future__ import annotations

from typing import Any


class NoosphereError(Exception):
    """The root: anything noosphere raises on purpose."""


# ------------------------------------------------------------------------------------ branches


class RequestError(NoosphereError):
    """A request the node will not serve; the message is what the caller reads.

    ``data`` (JSON) goes to the caller as the JSON-RPC error's data; ``metadata`` (string
    values) goes into the A2A ``ErrorInfo`` when there is no ``data``."""

    def __init__(
        self, message: str, *, data: Any | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        self.metadata = metadata or {}


class InvalidData(NoosphereError):
    """Bytes or values from outside (a peer, a file, a chain) that do not check out."""


class SetupError(NoosphereError):
    """The operator's files, settings or home are not usable; the message says how to fix it."""


class CryptoError(NoosphereError):
    """CP-ABE: a key, policy or ciphertext is wrong, or the attributes do not open it."""


class AgentError(NoosphereError):
    """An agent at work: a tool, the planner or the agent's memory failed."""


class ModelError(NoosphereError):
    """The shared models (the embedder, an LLM endpoint) are not available or failed."""


class ServiceError(NoosphereError):
    """Another process or service (libp2p, a node, the local chain, a scaler) failed us."""


# ------------------------------------------------------------------------------ request errors


class InvalidParams(RequestError):
    """The request's parameters are not acceptable (the message starts ``Invalid params:``)."""


class Unauthorized(RequestError):
    """The caller may not do this (or did not say who it is)."""


class RateLimited(RequestError):
    """A valid request the node will not take now; ``retry_after_s`` says when to retry."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, metadata={"retryAfterSeconds": f"{retry_after_s:g}"})
        self.retry_after_s = retry_after_s


class PaymentRequired(RequestError):
    """The agent charges for this task; ``terms`` (wire JSON) say what escrow to open."""

    def __init__(self, message: str, terms: dict[str, Any]) -> None:
        super().__init__(message, data=terms)
        self.terms = terms


class TaskNotFound(RequestError):
    """No such task (or not the caller's: foreign tasks look the same)."""


class TaskNotCancelable(RequestError):
    """The task has ended and cannot be canceled."""


class UnsupportedOperation(RequestError):
    """This node or agent does not do that (or not in the task's state)."""


class ContentTypeNotSupported(RequestError):
    """A part's media type is not one the agent accepts."""


class CardNotFound(RequestError):
    """No card (or more than one) with that id or prefix."""


class ExtendedCardNotConfigured(RequestError):
    """No extended agent card for that tenant on this node."""


class ServerError(RequestError):
    """The node failed at its own part (e.g. it cannot read the ledger)."""


class LedgerError(NoosphereError, RuntimeError):
    """A ledger call failed; ``error`` is the contract's custom error name if it reverted with one.

    The message is one line: ``<Contract.function> reverted: <Error>(arg=value, ...)``.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        args: dict[str, Any] | None = None,
        function: str | None = None,
        tx_hash: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.error_args = args or {}
        self.function = function
        self.tx_hash = tx_hash


class EncodingError(InvalidData, ValueError):
    """A value that is not canonical JSON, or bytes that are not a valid encoding."""
