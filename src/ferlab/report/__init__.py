"""The report document: one Markdown template rendered to report.md and report.html
(`document`), and what the study itself reported, set beside ferlab's figures (`study`).
The pipeline that trains, evaluates and explains for it is ferlab.report.build."""
