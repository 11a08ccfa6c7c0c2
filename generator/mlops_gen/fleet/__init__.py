"""`mlops-gen fleet`: plan, apply and check template updates across many repositories.

Modules, one job each:

- `discover`  find repositories and their `.copier-answers*.yml` files
- `render`    one checkout per template version, shared; in-process copier renders without tasks
- `merge`     copier's update merge (git apply, then `git merge-file` inline conflicts), file by file
- `yamlmerge` structure-aware 3-way merge of YAML files (ruamel.yaml round-trip, comments kept)
- `gitops`    read a repository, write the result as one commit on a new branch without touching
              the user's branch or working tree
- `engine`    plan / update / drift of one repository (runs in worker processes)
- `hosts/`    Git host API clients (GitHub, GitLab, Azure Repos, Bitbucket Cloud)
- `remote`    hosted repositories: listed by the API, filtered by template, shallow clones in a cache
- `push`      push an update branch with a lease
- `publish`   push, then open / update / supersede one update request per repository
- `status`    `fleet status`: version, versions behind, open request, drift
- `report`    rich progress bar, summary table and JSON report
- `command`   the click group
- `examples/` scheduled CI jobs running `fleet update --push --open-pr`
"""
