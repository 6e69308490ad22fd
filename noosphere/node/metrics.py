"""All phases (observability): the node's Prometheus metrics, served at ``/metrics``. Each node
owns its registry so several nodes can live in one process (tests) without sharing counters.

Agents with a life of their own (orchestrators) keep their metrics in their own registry and
attach it with ``attach_agent_registry``; every node registry in the process shows the attached
ones (like the process collector, they describe this process, and a node process hosts one
node), merged by metric name and told apart by their ``agent`` label."""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector

from noosphere.protocol import RejectReason


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # CPU seconds, RSS, open fds
        self.gossip_messages_received = Counter(
            "noosphere_gossip_messages_received_total",
            "Gossip messages delivered",
            ["topic"],
            registry=r,
        )
        self.gossip_messages_published = Counter(
            "noosphere_gossip_messages_published_total",
            "Gossip messages published",
            ["topic"],
            registry=r,
        )
        self.gossip_bytes_published = Counter(
            "noosphere_gossip_bytes_published_total",
            "Bytes of gossip data published",
            ["topic"],
            registry=r,
        )
        self.envelopes_accepted = Counter(
            "noosphere_gossip_envelopes_accepted_total", "Envelopes accepted", ["kind"], registry=r
        )
        self.envelopes_rejected = Counter(
            "noosphere_gossip_envelopes_rejected_total",
            "Envelopes rejected, by reason",
            ["reason"],
            registry=r,
        )
        self.inbound_overflow = Counter(
            "noosphere_gossip_inbound_overflow_total",
            "Gossip messages dropped because the inbound queue was full",
            registry=r,
        )
        self.cards_known = Gauge(
            "noosphere_cards_known", "Unexpired cards in the index", registry=r
        )
        self.card_propagation = Histogram(
            "noosphere_card_propagation_seconds",
            "Time from a card version's issue (owner's clock) to its arrival here",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.cards_synced = Counter(
            "noosphere_cards_synced_total", "New cards pulled from peers' indexes", registry=r
        )
        self.cards_expired = Counter(
            "noosphere_cards_expired_total", "Cards removed after their TTL", registry=r
        )
        self.peers_connected = Gauge(
            "noosphere_peers_connected", "Connected libp2p peers", registry=r
        )
        self.p2p_rpcs_sent = Counter(
            "noosphere_p2p_rpcs_sent_total", "Pubsub RPC frames written to peers", registry=r
        )
        self.p2p_messages_sent = Counter(
            "noosphere_p2p_messages_sent_total",
            "Pubsub messages written to peers (own and forwarded)",
            registry=r,
        )
        self.p2p_bytes_sent = Counter(
            "noosphere_p2p_bytes_sent_total", "Bytes of pubsub RPC frames written", registry=r
        )
        self.p2p_restarts = Gauge(
            "noosphere_p2p_restarts", "Times the libp2p host crashed and was restarted", registry=r
        )
        self.rpc_requests = Counter(
            "noosphere_rpc_requests_total", "JSON-RPC calls", ["method", "outcome"], registry=r
        )
        self.rpc_latency = Histogram(
            "noosphere_rpc_latency_seconds", "JSON-RPC call latency", ["method"], registry=r
        )
        self.tasks_total = Counter(
            "noosphere_tasks_total",
            "Task turns finished, by agent and final state",
            ["agent", "state"],
            registry=r,
        )
        self.tasks_running = Gauge(
            "noosphere_tasks_running", "Task turns executing now", registry=r
        )
        self.task_queue_depth = Gauge(
            "noosphere_task_queue_depth", "Task turns accepted and waiting for a slot", registry=r
        )
        self.task_latency = Histogram(
            "noosphere_task_latency_seconds",
            "Time from a turn's acceptance to its end (completed, failed, input-required...)",
            ["agent"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.push_notifications = Counter(
            "noosphere_push_notifications_total",
            "Push notification deliveries, by outcome",
            ["outcome"],
            registry=r,
        )
        self.rpc_auth_rejected = Counter(
            "noosphere_rpc_auth_rejected_total",
            "Requests refused for bad or missing credentials",
            ["reason"],
            registry=r,
        )
        for reason in RejectReason:
            self.envelopes_rejected.labels(reason=reason.value)
        self.models_loaded = Gauge(
            "noosphere_models_loaded",
            "1 once the embedding model is in memory (a node loading it is busy, not loaded)",
            registry=r,
        )
        self.models_loaded.set_function(_models_loaded)
        r.register(_AgentCollector())

    def record_sent(self, messages: int, size: int) -> None:
        """Called from the libp2p thread per RPC written (prometheus counters are thread-safe)."""
        self.p2p_rpcs_sent.inc()
        self.p2p_messages_sent.inc(messages)
        self.p2p_bytes_sent.inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _models_loaded() -> float:
    from noosphere.models.embedding import shared_embedder

    return 1.0 if shared_embedder().loaded else 0.0


_agent_registries: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def attach_agent_registry(registry: CollectorRegistry) -> None:
    """Show ``registry`` (an agent's own metrics) at every node's /metrics in this process."""
    _agent_registries.add(registry)


def detach_agent_registry(registry: CollectorRegistry) -> None:
    _agent_registries.discard(registry)


class _AgentCollector:
    """The attached agent registries, families of one name merged (one family per name is what
    the exposition format allows; the samples differ by their ``agent`` label)."""

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for registry in list(_agent_registries):
            for family in registry.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        return list(merged.values())
