"""The chaos run's duplicate-notification figure counts e-mails, so it can be non-zero."""

from bench.chaos import emails_per_notification_key

NOTIFICATIONS = [
    ("ann@example.com", "Order AK-1 is being prepared", "order_fulfilling", 1),
    ("ann@example.com", "Order AK-2 is being prepared", "order_fulfilling", 2),
]


def _duplicates(emails):
    counts = emails_per_notification_key(emails, NOTIFICATIONS)
    return {key: n for key, n in counts.items() if n > 1}


def test_one_e_mail_per_notification_is_no_duplicate():
    emails = [
        {"to": ["ann@example.com"], "subject": "Order AK-1 is being prepared"},
        {"to": ["ann@example.com"], "subject": "Order AK-2 is being prepared"},
    ]
    assert _duplicates(emails) == {}


def test_the_same_notification_mailed_twice_is_counted_per_recipient_kind_and_order():
    emails = [
        {"to": ["ann@example.com"], "subject": "Order AK-1 is being prepared"},
        {"to": ["ann@example.com"], "subject": "Order AK-1 is being prepared"},
        {"to": ["ann@example.com"], "subject": "Order AK-2 is being prepared"},
    ]
    assert _duplicates(emails) == {("ann@example.com", "order_fulfilling", 1): 2}


def test_an_e_mail_no_notification_explains_is_counted_under_its_subject():
    emails = [{"to": ["bob@example.com"], "subject": "Hello"}] * 2
    assert _duplicates(emails) == {("bob@example.com", "unmatched:Hello", None): 2}
