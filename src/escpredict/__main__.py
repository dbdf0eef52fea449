from escpredict.cli import app

app()
