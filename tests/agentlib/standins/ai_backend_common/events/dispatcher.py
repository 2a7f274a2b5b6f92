"""Stand-in for ai.backend.common.events.dispatcher: `EventProducer` is only stored by the code
runner (the harness passes None); nothing on the protocol path produces events."""


class EventProducer:
    """Placeholder type."""
