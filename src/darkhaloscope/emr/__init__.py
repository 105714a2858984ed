"""Running darkhaloscope at survey scale on AWS EMR (on EC2 or Serverless).

``package`` builds and uploads the job environment and code, ``requests`` builds the boto3
request dicts, ``launch`` sends them and waits, ``sizing`` sizes a run from ``make bench``
figures, ``commands`` is the ``darkhaloscope emr`` verb. See emr/README.md.
"""
