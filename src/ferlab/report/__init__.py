from ferlab.report.build import Interrupted, ReportConfig, build_report

__all__ = ["Interrupted", "ReportConfig", "build_report"]
