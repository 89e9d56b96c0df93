"""A realistic demo partner program: partners, users and hub events that tell the revamp story.

Usage is low (about 45 % of partners active a month) until the portal is revamped (`revamp_date`),
then climbs to about 80 % within six months; revenue per partner rises by about 15 %, support and manual
coordination fall, tasks get done. Most churning partners fade first: lower survey scores, then fewer
logins and skipped months, more open tasks and support requests in the 2-4 months before they leave.
"""

from partnerkpi.demo.generate import DemoFiles, generate
from partnerkpi.demo.story import DEFAULT_END, revamp_date

__all__ = ["DEFAULT_END", "DemoFiles", "generate", "revamp_date"]
