"""spark-submit entry point that runs one ``darkhaloscope <verb>`` on the EMR driver.

Used by ``emr launch`` for the steps that are not Spark jobs (``report``), so they run with the
same environment archive and code zip as the Spark jobs, on EMR on EC2 and EMR Serverless alike:

    spark-submit ... s3://<bucket>/<prefix>/code/<id>/run_cli.py report --config ... --dataset ...
"""

import sys

from darkhaloscope.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
