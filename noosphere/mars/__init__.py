"""Recruit and Feedback: MARS, the recruiter (index, filter, ranking) and trust."""
