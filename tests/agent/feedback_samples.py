"""Write the SYNTHETIC feedback message samples of tests/data/feedback/messages/ (README there).

They are composed from the public format descriptions (RFC 5965, Yahoo's CFL FAQ, the 2026 JMRP change described in
the project's reference monitoring-and-feedback.md §3, RFC 8058/2369 mailto unsubscribes). Their VERP return paths,
``X-Mailinfra-Id`` values and unsubscribe token are made with ``feedback.verp`` / ``feedback.tokens`` and the test key
``TEST_KEYS`` (a fixture, never used anywhere else), so the samples must be rewritten when those formats change:

    python -m tests.agent.feedback_samples tests/data/feedback/messages          # synthetic samples
    python -m tests.agent.postfix_dsn tests/data/feedback/messages               # real Postfix DSNs (root)
"""

from __future__ import annotations

import sys
from pathlib import Path

from mailinfra_agent.feedback import tokens, verp
from tests.agent.postfix_dsn import TEST_KEYS

TOKEN_TIME = 1796536800  # 2026-12-06 05:20 UTC


def _original(return_path: str, ident: str) -> str:
    return f"""Return-Path: <{return_path}>
Received: from mta1.news.example.com (mta1.news.example.com [192.0.2.25])
 by mta1002.mail.gq1.yahoo.example with SMTP; Sun, 06 Dec 2026 05:10:02 +0000
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=news.example.com;
 s=mkt2026; t=1796533800; h=from:to:subject:date:message-id:list-id:list-unsubscribe;
 bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
 b=c3ludGhldGljIHNpZ25hdHVyZSwgbm90IGEgcmVhbCBvbmU=
From: Example News <news@news.example.com>
To: REDACTED
Subject: Your December deals
Date: Sun, 06 Dec 2026 05:10:00 +0000
Message-ID: <20261206051000.42.7.1001@news.example.com>
List-Id: December deals <deals.news.example.com>
List-Unsubscribe: <https://unsub.news.example.com/TOKEN>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
X-Mailinfra-Id: {ident}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Fifty percent off everything this week.
"""


def samples() -> dict[str, str]:
    """File name -> content of each synthetic sample."""
    domain = 'bounces.news.example.com'
    cfl_verp = verp.encode(TEST_KEYS, stream='marketing', domain=domain, segment='7', campaign='42')
    cfl_id = tokens.make_id('kitty.cat@yahoo.example', 'marketing', TEST_KEYS, segment='7', campaign='42')
    jmrp_verp = verp.encode(TEST_KEYS, stream='marketing', domain=domain, recipient='zoe@outlook.test')
    jmrp_id = tokens.make_id('zoe@outlook.test', 'marketing', TEST_KEYS, segment='7', campaign='43')
    token = tokens.make_token('anna@gmail.example', 'marketing', TEST_KEYS, TOKEN_TIME)
    cfl = f"""Return-Path: <feedback@arf.mail.yahoo.example>
X-Original-To: fbl@news.example.com
Delivered-To: fbl@news.example.com
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=arf.mail.yahoo.example; s=arf;
 h=from:to:subject:date:message-id; bh=c3ludGhldGlj; b=c3ludGhldGlj
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.example>
To: fbl@news.example.com
Subject: FW: Your December deals
Date: Sun, 06 Dec 2026 06:01:00 +0000
Message-ID: <cfl.20261206060100.1@arf.mail.yahoo.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
 boundary="----=_Part_CFL_1"

------=_Part_CFL_1
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 192.0.2.25 on Sun, 06 Dec 2026 05:10:02 +0000.

------=_Part_CFL_1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{cfl_verp}>
Arrival-Date: Sun, 06 Dec 2026 05:10:02 +0000
Source-IP: 192.0.2.25
Reported-Domain: news.example.com
Authentication-Results: mta1002.mail.gq1.yahoo.example; dkim=pass header.d=news.example.com

------=_Part_CFL_1
Content-Type: message/rfc822
Content-Disposition: inline

{_original(cfl_verp, cfl_id)}
------=_Part_CFL_1--
"""
    jmrp = f"""Return-Path: <staff@hotmail.example>
X-Original-To: fbl@news.example.com
Delivered-To: fbl@news.example.com
From: staff@hotmail.example
To: fbl@news.example.com
Subject: complaint about message from 192.0.2.25
Date: Sun, 06 Dec 2026 06:05:00 +0000
Message-ID: <jmrp.20261206060500.7@hotmail.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="JMRP-boundary-7"

--JMRP-boundary-7
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message received from IP 192.0.2.25.
The recipient address has been removed.

--JMRP-boundary-7
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Microsoft JMRP/2.0
Version: 1
Original-Mail-From: <{jmrp_verp}>
Original-Rcpt-To: <redacted>
Arrival-Date: Sun, 06 Dec 2026 05:20:11 +0000
Source-IP: 192.0.2.25
Reported-Domain: news.example.com

--JMRP-boundary-7
Content-Type: text/rfc822-headers

Return-Path: <{jmrp_verp}>
Received: from mta1.news.example.com (192.0.2.25) by mx.outlook.example with Microsoft SMTP Server;
 Sun, 06 Dec 2026 05:20:11 +0000
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=news.example.com; s=mkt2026;
 h=from:to:subject:date:message-id; bh=c3ludGhldGlj; b=c3ludGhldGlj
From: Example News <news@news.example.com>
To: <redacted>
Subject: Your December deals
Date: Sun, 06 Dec 2026 05:20:00 +0000
Message-ID: <20261206052000.43.7.2001@news.example.com>
List-Id: December deals <deals.news.example.com>
X-Mailinfra-Id: {jmrp_id}

--JMRP-boundary-7--
"""
    unsubscribe = f"""Return-Path: <anna@gmail.example>
X-Original-To: unsubscribe@news.example.com
Delivered-To: unsubscribe@news.example.com
From: Anna <anna@gmail.example>
To: unsubscribe@news.example.com
Subject: unsubscribe {token}
Date: Sun, 06 Dec 2026 06:10:00 +0000
Message-ID: <unsub.1@mail.gmail.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8

This message was automatically generated by Gmail.
"""
    no_original = """From: FBL <fbl@isp.example>
To: fbl@news.example.com
Subject: Abuse report
Date: Sun, 06 Dec 2026 06:15:00 +0000
Message-ID: <noorig.1@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b1"

--b1
Content-Type: text/plain

An abuse report. The original message is not attached.

--b1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeISP-FBL/1.0
Version: 1
Original-Mail-From: <news@news.example.com>
Original-Rcpt-To: <Bob@ISP.example>
Arrival-Date: Sun, 06 Dec 2026 05:30:00 +0000
Source-IP: 192.0.2.26

--b1--
"""
    return {
        'synthetic-yahoo-cfl-redacted.eml': cfl,
        'synthetic-jmrp-anonymised.eml': jmrp,
        'synthetic-mailto-unsubscribe.eml': unsubscribe,
        'synthetic-arf-no-original.eml': no_original,
    }


def main(directory: str) -> int:
    for name, content in samples().items():
        Path(directory, name).write_text(content, encoding='utf-8')
        print(f'{name}: {len(content)} characters')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
