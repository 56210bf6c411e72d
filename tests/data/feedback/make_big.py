"""Build the "big attachment" reply on demand, so that 20 MB never has to live in git.

``big_attachment_message()`` returns the bytes of what ``big-attachment.eml`` would be:
an iPhone reply from delivery 3 (chloe.martin@icloud.com) to the 2017-11-02 edition,
with a short text part and a 20 MiB ``image/jpeg`` attachment (base64) of deterministic
pseudo-random bytes. The result is the same on every call and every machine.

Run ``python make_big.py OUT.eml`` to write it somewhere (not into the repository).
"""

from __future__ import annotations

import random
import sys
from email import policy
from email.message import EmailMessage

ATTACHMENT_SIZE = 20 * 1024 * 1024
ATTACHMENT_SEED = 7

#: What the feedback corpus expects of this message (as corpus.toml does for the .eml files).
EXPECTED = {
    "file": "big-attachment.eml",
    "kind": "reply",
    "edition": "2017-11-02",
    "subscriber": "chloe.martin@icloud.com",
    "subject": "Re: Executive Summary for November 2nd",
    "from": "chloe.martin@icloud.com",
    "text_contains": ["Photos from the harbour meeting attached."],
    "text_excludes": ["Sent from my iPhone"],
}

_TRACE = (
    b"Return-Path: <chloe.martin@icloud.com>\n"
    b"Delivered-To: desk@news.example.org\n"
    b"Received: from mx.news.example.org\n"
    b"\tby mx.news.example.org with LMTP id Qm4ZC1p0+1kbXgAAR8mW3gAA\n"
    b"\t(envelope-from <chloe.martin@icloud.com>)\n"
    b"\tfor <desk@news.example.org>; Thu, 02 Nov 2017 17:40:29 +0000\n"
    b"Received: from st13p35im-asmtp004.me.com (st13p35im-asmtp004.me.com [192.0.2.34])\n"
    b"\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\n"
    b"\t(No client certificate requested)\n"
    b"\tby mx.news.example.org (Postfix) with ESMTPS id 3ySxK94fLcz9sPq\n"
    b"\tfor <desk@news.example.org>; Thu,  2 Nov 2017 17:40:27 +0000 (UTC)\n"
    b"Received: from [10.51.14.7] (unknown [198.51.100.77])\n"
    b" by st13p35im-asmtp004.me.com\n"
    b" (Oracle Communications Messaging Server 8.0.1.2.20170607 64bit (built Jun  7\n"
    b" 2017)) with ESMTPSA id <0OYS00K4T9ZQ1L20@st13p35im-asmtp004.me.com> for\n"
    b" desk@news.example.org; Thu, 02 Nov 2017 17:39:58 +0000 (GMT)\n"
)


def attachment_bytes() -> bytes:
    return random.Random(ATTACHMENT_SEED).randbytes(ATTACHMENT_SIZE)


def big_attachment_message() -> bytes:
    msg = EmailMessage(policy=policy.default)
    msg["From"] = "Chloe Martin <chloe.martin@icloud.com>"
    msg["Subject"] = "Re: Executive Summary for November 2nd"
    msg["Date"] = "Thu, 02 Nov 2017 18:39:51 +0100"
    msg["Message-ID"] = "<7D3C9A51-2E84-4B6F-A0C2-91F5D8E3B604@icloud.com>"
    msg["References"] = "<20171102.3.1f1f3faed04ea8ee@news.example.org>"
    msg["In-Reply-To"] = "<20171102.3.1f1f3faed04ea8ee@news.example.org>"
    msg["To"] = "The Morning Ledger <desk@news.example.org>"
    msg["X-Mailer"] = "iPhone Mail (15B93)"
    msg.set_content(
        "Photos from the harbour meeting attached.\n\nChloe\n\nSent from my iPhone\n",
        charset="us-ascii",
        cte="7bit",
    )
    msg.add_attachment(
        attachment_bytes(),
        maintype="image",
        subtype="jpeg",
        filename="IMG_4471.JPG",
        disposition="attachment",
        cte="base64",
        params={"name": "IMG_4471.JPG"},
    )
    for part in msg.iter_parts():
        del part["MIME-Version"]  # the email package adds it to converted parts; clients don't
    msg.set_boundary("Apple-Mail-4F0B6E2D-9C13-4A87-B5E1-2D6C8A0F7B39")
    return _TRACE + msg.as_bytes(policy=policy.default.clone(linesep="\n"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_big.py OUT.eml")
    with open(sys.argv[1], "wb") as out:
        out.write(big_attachment_message())
