"""Retrieval: dense and lexical search, fusion, phase tagging, answers with citations."""
