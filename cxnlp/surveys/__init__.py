"""Satisfaction surveys: a questionnaire export in, the 满意度得分统计表 (workbook or JSON) out."""
from cxnlp.surveys.cleaning import CleaningRules
from cxnlp.surveys.report import SurveyOptions, build_survey_report
from cxnlp.surveys.workbook import write_survey_workbook

__all__ = ["CleaningRules", "SurveyOptions", "build_survey_report", "write_survey_workbook"]
