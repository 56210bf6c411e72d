"""Readers' mail: replies, suggestions, bounces, complaints, filed against editions.

::

    mailbox (IMAP) / files / inbound SMTP      digest/feedback/sources.py, imap.py, listen.py
          │  raw bytes
          ▼
    store raw first, copies found by content   digest/feedback/raw.py (for store.py)
          ▼
    parse (pure, within limits), outside any   digest/feedback/parse.py, bounds.py
    transaction                                (run by store.py)
          ▼
    link to a delivery, classify               digest/feedback/match.py, classify.py
          ▼
    effects: bounced / complained / left       digest/feedback/effects.py (bounces: send/bounces.py)

    one person's mail and deliveries: the subject-access answer and the erase
                                               digest/feedback/person.py
"""
