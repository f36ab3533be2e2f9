from golem_tasks.cli import main

main()
