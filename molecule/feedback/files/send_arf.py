#!/opt/mailinfra-agent/bin/python
"""Send an ARF complaint (RFC 5965, like a provider's feedback loop) to the host's bounce/FBL MX.

Usage: send_arf.py RECIPIENT STREAM FBL_ADDRESS

Runs with the agent's Python: the reported original's return path is the stream's VERP address for
RECIPIENT, signed with the host's signing key (the contract's suppression.signing_key_file), as the
stream's mail carries it (verp_address.py, installed beside this script). Prints the VERP address.
"""

import smtplib
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from verp_address import return_path as verp_return_path


def main() -> None:
    recipient, stream_name, fbl = sys.argv[1:4]
    from_domain, return_path = verp_return_path(recipient, stream_name)
    original = (
        f'Return-Path: <{return_path}>\r\n'
        f'From: news@{from_domain}\r\n'
        f'To: {recipient}\r\n'
        'Subject: Our newsletter\r\n'
        f'Message-ID: {make_msgid(domain=from_domain)}\r\n'
        f'Date: {formatdate()}\r\n'
        '\r\n'
        'The newsletter.\r\n'
    )
    report = EmailMessage()
    report['From'] = 'fbl@isp.test'
    report['To'] = fbl
    report['Subject'] = 'FW: Our newsletter'
    report['Date'] = formatdate()
    report['Message-ID'] = make_msgid(domain='isp.test')
    report.set_content('This is an email abuse report for an email message received from IP 192.0.2.20.\n')
    report.make_mixed()
    report.set_type('multipart/report')
    report.set_param('report-type', 'feedback-report')
    feedback = EmailMessage()
    feedback.set_content(
        'Feedback-Type: abuse\r\nUser-Agent: molecule-fbl/1.0\r\nVersion: 1\r\n'
        f'Original-Mail-From: <{return_path}>\r\nOriginal-Rcpt-To: <{recipient}>\r\n'
        f'Arrival-Date: {formatdate()}\r\nSource-IP: 192.0.2.20\r\n'
    )
    feedback.replace_header('Content-Type', 'message/feedback-report')
    report.attach(feedback)
    rfc822 = EmailMessage()
    rfc822.set_content(original)
    rfc822.replace_header('Content-Type', 'text/rfc822-headers')
    report.attach(rfc822)
    with smtplib.SMTP('127.0.0.1', 25, timeout=30) as client:
        client.sendmail('fbl-sender@isp.test', [fbl], report.as_bytes())
    print(return_path)


if __name__ == '__main__':
    main()
