"""The report document: one Markdown template rendered to report.md and report.html
(`document`), and what the study itself reported, set beside ferlab's figures (`study`).
The command that trains, evaluates and explains for it is ferlab.commands.report."""
