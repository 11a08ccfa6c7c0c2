"""One failing and one passing example per rule: (rule, file name, bad, good, line of the finding)."""

from __future__ import annotations

BS = "buildspec.yml"
AZ = "azure-pipelines.yml"
GCB = "cloudbuild.yaml"

BS_HEAD = "version: 0.2\nenv:\n  shell: bash\n"

CASES = [
    # ---- YAML layer
    ("yaml-syntax", BS, BS_HEAD + "phases:\n  build:\n    commands:\n      - [echo\n",
     BS_HEAD + "phases:\n  build:\n    commands:\n      - echo '['\n", 8),
    ("yaml-duplicate-key", BS, BS_HEAD + "phases:\n  build:\n    commands: [a]\n  build:\n    commands: [b]\n",
     BS_HEAD + "phases:\n  build:\n    commands: [a, b]\n", 7),
    ("yaml-undeclared-alias", BS, BS_HEAD + "phases:\n  build:\n    commands: *cmds\n",
     BS_HEAD + "phases:\n  build:\n    commands: &cmds [a]\n", 6),
    ("yaml-too-complex", BS, BS_HEAD + "phases:\n  build:\n    commands: " + "[" * 201 + "]" * 201 + "\n",
     BS_HEAD + "phases:\n  build:\n    commands:\n" + "      - echo '[[[ ${x[0]}'\n" * 201, 6),
    ("yaml-octal", BS, BS_HEAD + "  variables:\n    MODE: 0755\nphases:\n  build:\n    commands: [a]\n",
     BS_HEAD + "  variables:\n    MODE: '0755'\nphases:\n  build:\n    commands: [a]\n", 5),
    ("ci-not-mapping", BS, "- just\n- a list\n", BS_HEAD + "phases:\n  build:\n    commands: [a]\n", 1),
    ("ci-dialect", "ci.yml", "hello: world\n", "steps:\n  - script: echo hi\n", 1),
    ("shell-ignore-failure", BS, BS_HEAD + "phases:\n  build:\n    commands:\n      - make test || true\n",
     BS_HEAD + "phases:\n  build:\n    commands:\n      - make test\n", 7),
    # ---- buildspec
    ("bs-schema", BS, BS_HEAD + "phases:\n  biuld:\n    commands: [a]\n",
     BS_HEAD + "phases:\n  build:\n    commands: [a]\n", 5),
    ("bs-unknown-key", BS, BS_HEAD + "phases:\n  build:\n    commands: [a]\nartifacts:\n  type: zip\n  files: [a]\n",
     BS_HEAD + "phases:\n  build:\n    commands: [a]\nartifacts:\n  files: [a]\n", 8),
    ("bs-empty-list", BS, BS_HEAD + "phases:\n  build:\n    commands: [a]\ncache:\n  paths:\n    # - x/**/*\n",
     BS_HEAD + "phases:\n  build:\n    commands: [a]\ncache:\n  paths:\n    - x/**/*\n", 8),
    ("bs-command-mapping", BS, BS_HEAD + "phases:\n  build:\n    commands:\n      - echo a: b\n",
     BS_HEAD + "phases:\n  build:\n    commands:\n      - 'echo a: b'\n", 7),
    ("bs-command-empty", BS, BS_HEAD + "phases:\n  build:\n    commands:\n      - a\n      -\n",
     BS_HEAD + "phases:\n  build:\n    commands:\n      - a\n", 8),
    ("bs-reserved-variable", BS, BS_HEAD + "  variables:\n    CODEBUILD_X: a\nphases:\n  build:\n    commands: [a]\n",
     BS_HEAD + "  variables:\n    MY_X: a\nphases:\n  build:\n    commands: [a]\n", 5),
    ("bs-exported-aws", BS, BS_HEAD + "  exported-variables:\n    - AWS_REGION\nphases:\n  build:\n    commands: [a]\n",
     BS_HEAD + "  exported-variables:\n    - REGION\nphases:\n  build:\n    commands: [a]\n", 5),
    ("bs-default-shell", BS, "version: 0.2\nphases:\n  build:\n    commands:\n      - '[[ -f x ]] && make'\n",
     BS_HEAD + "phases:\n  build:\n    commands:\n      - '[[ -f x ]] && make'\n", 5),
    ("bs-yaml11-bool", BS, BS_HEAD + "  variables:\n    VERBOSE: yes\nphases:\n  build:\n    commands: [a]\n",
     BS_HEAD + "  variables:\n    VERBOSE: 'yes'\nphases:\n  build:\n    commands: [a]\n", 5),
    # ---- Azure Pipelines
    ("az-schema", AZ, "trigger: [main]\nsteps:\n  - script: echo hi\n    displayNam: x\n",
     "trigger: [main]\nsteps:\n  - script: echo hi\n    displayName: x\n", 4),
    ("az-unknown-task", AZ, "steps:\n  - task: CopyFile@2\n",
     "steps:\n  - task: CopyFiles@2\n    inputs: {TargetFolder: out}\n", 2),
    ("az-extension-task", AZ, "steps:\n  - task: acme.tools.Deploy@1\n",
     "steps:\n  - task: CopyFiles@2\n    inputs: {TargetFolder: out}\n", 2),
    ("az-custom-task", AZ, "steps:\n  - task: MyCompanyTask@2\n",
     "steps:\n  - task: CopyFiles@2\n    inputs: {TargetFolder: out}\n", 2),
    ("az-task-input", AZ, "steps:\n  - task: PowerShell@2\n    inputs:\n      targetType: shell\n",
     "steps:\n  - task: PowerShell@2\n    inputs:\n      targetType: INLINE\n      script: echo\n", 4),
    ("az-task-unknown-input", AZ, "steps:\n  - task: CopyFiles@2\n    inputs:\n      TargetFoldr: out\n",
     "steps:\n  - task: CopyFiles@2\n    inputs:\n      targetfolder: out\n", 4),
    ("az-task-required-input", AZ, "steps:\n  - task: CopyFiles@2\n    inputs:\n      Contents: '**'\n",
     "steps:\n  - task: CopyFiles@2\n    inputs:\n      TargetFolder: out\n", 3),
    ("az-id-syntax", AZ, "jobs:\n  - job: build-linux\n    steps:\n      - script: echo\n",
     "jobs:\n  - job: build_linux\n    steps:\n      - script: echo\n", 2),
    ("az-duplicate-id", AZ,
     "jobs:\n  - job: a\n    steps: [{script: echo}]\n  - job: A\n    steps: [{script: echo}]\n",
     "jobs:\n  - job: a\n    steps: [{script: echo}]\n  - job: b\n    steps: [{script: echo}]\n", 4),
    ("az-depends-on", AZ,
     ("stages:\n  - stage: build\n    jobs: [{job: a, steps: [{script: echo}]}]\n  - stage: deploy\n"
     "    dependsOn: biuld\n    jobs: [{job: a, steps: [{script: echo}]}]\n"),
     ("stages:\n  - stage: build\n    jobs: [{job: a, steps: [{script: echo}]}]\n  - stage: deploy\n"
     "    dependsOn: build\n    jobs: [{job: a, steps: [{script: echo}]}]\n"), 5),
    ("az-deployment-environment", AZ,
     ("jobs:\n  - deployment: ship\n    strategy:\n      runOnce:\n        deploy:\n          steps:\n"
     "            - script: echo\n"),
     ("jobs:\n  - deployment: ship\n    environment: prod\n    strategy:\n      runOnce:\n        deploy:\n"
     "          steps:\n            - script: echo\n"), 2),
    ("az-deployment-checkout", AZ,
     ("jobs:\n  - deployment: ship\n    environment: prod\n    strategy:\n      runOnce:\n        deploy:\n"
     "          steps:\n            - script: python -m pkg deploy\n"),
     ("jobs:\n  - deployment: ship\n    environment: prod\n    strategy:\n      runOnce:\n        deploy:\n"
     "          steps:\n            - checkout: self\n            - script: python -m pkg deploy\n"), 8),
    ("az-continue-on-error", AZ, "steps:\n  - script: make test\n    continueOnError: true\n",
     "steps:\n  - script: make test\n    continueOnError: false\n", 3),
    ("az-condition", AZ, "steps:\n  - script: echo\n    condition: and(succeeded(), eq(variables.x, 'a')\n",
     "steps:\n  - script: echo\n    condition: and(succeeded(), eq(variables.x, 'a'))\n", 3),
    ("az-unknown-key", AZ, "steps:\n  - script: echo hi\n    owner: team\n",
     "steps:\n  - script: echo hi\n    displayName: team\n", 3),
    ("az-empty-value", AZ, "trigger:\n  branches:\n    include:\nsteps:\n  - script: echo\n",
     "trigger:\n  branches:\n    include: [main]\nsteps:\n  - script: echo\n", 3),
    ("az-undeclared-dependency", AZ,
     ("jobs:\n  - job: a\n    steps: [{script: echo}]\n  - job: b\n"
      "    condition: eq(dependencies.a.result, 'Succeeded')\n    steps: [{script: echo}]\n"),
     ("jobs:\n  - job: a\n    steps: [{script: echo}]\n  - job: b\n    dependsOn: a\n"
      "    condition: eq(dependencies.a.result, 'Succeeded')\n    steps: [{script: echo}]\n"), 5),
    ("az-approval-unused", AZ,
     ("jobs:\n  - job: approve\n    pool: server\n    steps:\n      - task: ManualValidation@1\n"
      "        inputs: {notifyUsers: a@b.c}\n  - job: deploy\n    steps: [{script: echo}]\n"),
     ("jobs:\n  - job: approve\n    pool: server\n    steps:\n      - task: ManualValidation@1\n"
      "        inputs: {notifyUsers: a@b.c}\n  - job: deploy\n    dependsOn: approve\n    steps: [{script: echo}]\n"),
     5),
    ("az-branch-never-matches", AZ,
     "pr:\n  branches:\n    include: [refs/tags/v*]\nsteps:\n  - script: echo\n",
     "pr:\n  branches:\n    include: [main]\nsteps:\n  - script: echo\n", 3),
    ("az-template-macro", AZ, "steps:\n  - template: steps/$(version)/build.yml\n",
     "steps:\n  - template: steps/${{ variables.version }}/build.yml\n", 2),
    # ---- Cloud Build
    ("gcb-proto", GCB, "steps:\n  - name: ubuntu\n    args: [echo, $_A]\nsubstitutions:\n  _A: [x]\n",
     "steps:\n  - name: ubuntu\n    args: [echo, $_A]\nsubstitutions:\n  _A: '[x]'\n", 5),
    ("gcb-schema", GCB, "steps:\n  - name: ubuntu\n    timeout: soon\n",
     "steps:\n  - name: ubuntu\n    timeout: 60s\n", 3),
    ("gcb-unknown-key", GCB, "steps:\n  - name: ubuntu\noptions:\n  workerPool: projects/p/locations/l/workerPools/w\n",
     "steps:\n  - name: ubuntu\noptions:\n  pool:\n    name: projects/p/locations/l/workerPools/w\n", 4),
    ("gcb-empty-list", GCB, "steps:\n  - name: ubuntu\n    args:\n      # - echo\n",
     "steps:\n  - name: ubuntu\n    args:\n      - echo\n", 3),
    ("gcb-wait-for-string", GCB, "steps:\n  - name: ubuntu\n    id: a\n  - name: ubuntu\n    waitFor: a\n",
     "steps:\n  - name: ubuntu\n    id: a\n  - name: ubuntu\n    waitFor: [a]\n", 5),
    ("gcb-loose-substitution", GCB,
     "steps:\n  - name: ubuntu\n    args: [echo, $HOME]\noptions:\n  substitutionOption: ALLOW_LOOSE\n",
     "steps:\n  - name: ubuntu\n    args: [echo, $$HOME]\noptions:\n  substitutionOption: ALLOW_LOOSE\n", 3),
    ("gcb-script-substitution", GCB,
     "steps:\n  - name: ubuntu\n    script: echo $_TARGET\nsubstitutions:\n  _TARGET: local\n",
     "steps:\n  - name: ubuntu\n    script: echo $_TARGET\n    automapSubstitutions: true\nsubstitutions:\n"
     "  _TARGET: local\n", 3),
    ("gcb-substitution-name", GCB, "steps:\n  - name: ubuntu\n    args: [echo, $_lower]\nsubstitutions:\n  _lower: a\n",
     "steps:\n  - name: ubuntu\n    args: [echo, $_UPPER]\nsubstitutions:\n  _UPPER: a\n", 5),
    ("gcb-substitution-null", GCB, "steps:\n  - name: ubuntu\n    args: [echo, $_A]\nsubstitutions:\n  _A:\n",
     "steps:\n  - name: ubuntu\n    args: [echo, $_A]\nsubstitutions:\n  _A: ''\n", 5),
    ("gcb-undefined-substitution", GCB, "steps:\n  - name: ubuntu\n    args: [echo, $_TARGET]\n",
     "steps:\n  - name: ubuntu\n    args: [echo, $_TARGET]\nsubstitutions:\n  _TARGET: local\n", 3),
    ("gcb-unused-substitution", GCB, "steps:\n  - name: ubuntu\n    args: [echo]\nsubstitutions:\n  _TARGET: local\n",
     "steps:\n  - name: ubuntu\n    args: [echo, $_TARGET]\nsubstitutions:\n  _TARGET: local\n", 5),
    ("gcb-unknown-substitution", GCB, "options:\n  logging: CLOUD_LOGGING_ONLY\nsteps:\n  - name: gcr.io/$PROJET_ID/x\n",
     "options:\n  logging: CLOUD_LOGGING_ONLY\nsteps:\n  - name: gcr.io/$PROJECT_ID/x\n", 4),
    ("gcb-shell-dollar", GCB, "steps:\n  - name: ubuntu\n    entrypoint: bash\n    args: [-c, 'echo $HOME']\n",
     "steps:\n  - name: ubuntu\n    entrypoint: bash\n    args: [-c, 'echo $$HOME']\n", 4),
    ("gcb-wait-for", GCB, "steps:\n  - name: ubuntu\n    id: a\n  - name: ubuntu\n    waitFor: [b]\n",
     "steps:\n  - name: ubuntu\n    id: a\n  - name: ubuntu\n    waitFor: [a]\n", 5),
    ("gcb-duplicate-id", GCB, "steps:\n  - name: ubuntu\n    id: a\n  - name: ubuntu\n    id: a\n",
     "steps:\n  - name: ubuntu\n    id: a\n  - name: ubuntu\n    id: b\n", 5),
    ("gcb-secret-env", GCB, "steps:\n  - name: ubuntu\n    secretEnv: [TOKEN]\n",
     ("steps:\n  - name: ubuntu\n    secretEnv: [TOKEN]\navailableSecrets:\n  secretManager:\n"
     "    - versionName: projects/p/secrets/t/versions/latest\n      env: TOKEN\n"), 3),
    ("gcb-gcr-io", GCB, "steps:\n  - name: ubuntu\nimages:\n  - gcr.io/$PROJECT_ID/app\n",
     "steps:\n  - name: ubuntu\nimages:\n  - europe-docker.pkg.dev/$PROJECT_ID/repo/app\n", 4),
    # ---- infra
    ("gcb-trigger", "infra/gcp/trigger.yaml", "name: main\nfilename: cloudbuild.yaml\nbranch: main\n",
     "name: main\nfilename: cloudbuild.yaml\ngithub:\n  owner: me\n  name: repo\n  push:\n    branch: ^main$\n", 3),
    ("cfn-E3002", "infra/aws/stack.yaml",
     ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
     "      BucketNam: x\n"),
     ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
     "      BucketName: my-bucket-name\n"), 6),
]
