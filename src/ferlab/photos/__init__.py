"""Faces in photos and videos: `detect` (registered face detectors, aligned crops),
`analyze` (detect, crop and classify; results as rows), `rows` (rows into .csv/.json files),
`draw` (annotated copies), `photo_eval` (accuracy on a labelled photo folder) and `photo_set`
(the project's own photo set with known face boxes)."""
