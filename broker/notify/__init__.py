"""Notifications (GS CIM 009 5.8.6): the dispatcher that turns the durable change log into notifications.

``registry`` keeps every process's in-memory index of the subscriptions (reloaded on the store's
announcements); ``rules`` decides which subscriptions a change concerns; ``payload`` renders the
notification; ``delivery`` sends it, one ordered queue per subscription; ``dispatcher`` reads the change log,
shares the partitions of subscriptions between broker processes and keeps the durable cursors.
Nothing here runs inside a request: a write commits its change-log row and answers; delivery follows.
"""
