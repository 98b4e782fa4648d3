"""One module per analysis wired into the report: `KEY`, `TITLE`, `MODULE`, `compute`, `section`.

`compute(model, prompt, target, foil, seed)` returns {csv name: DataFrame} by calling the
analysis's public API; `section(tables)` draws the section from those tables as read back from
the CSVs. `interp.report.analyses` lists them in page order.
"""
