"""The agent harness's words, as templates (`str.format` fields in braces).

mini-SWE-agent 1.x's SWE-bench configuration (config/extra/swebench.yaml,
https://github.com/SWE-agent/mini-swe-agent, MIT licence), the scaffold the routing data was
measured with, so that pass rates carry over: a THOUGHT, then exactly one command in one fenced
bash block per turn; every command runs in a fresh subshell in the repository; the observation
is the return code and the output (head and tail when long); the model submits with the
scaffold's own line, whose output starts with the sentinel. The scaffold's text is kept next to
this one (tests/fixtures/mini-swe-agent/) and compared by tests/test_agent_protocol.py; every
deliberate difference is listed in ARCHITECTURE.md.
"""

from __future__ import annotations

SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
# The scaffold's submission line. Only the first line of its output counts (the sentinel, and
# any new files named after it); the diff `git diff --cached` prints is not read.
SUBMIT = f"echo {SENTINEL} && git add -A && git diff --cached"
SUBMIT_NAMING = f"echo {SENTINEL} src/new_module.py && git add -A && git diff --cached"

SYSTEM = """You are a helpful assistant that can interact multiple times with a computer shell to solve programming tasks.
Your response must contain exactly ONE bash code block with ONE command (or commands connected with && or ||).

Include a THOUGHT section before your command where you explain your reasoning process.
Format your response as shown in <format_example>.

<format_example>
THOUGHT: Your reasoning and analysis here

```bash
your_command_here
```
</format_example>

Failure to follow these rules will cause your response to be rejected."""

INSTANCE = """<pr_description>
Consider the following PR description:
{task}
</pr_description>

<instructions>
# Task Instructions

## Overview
You're a software engineer interacting continuously with a computer by submitting commands.
You'll be helping implement necessary changes to meet requirements in the PR description.
Your task is specifically to make changes to non-test files in the current directory in order to fix the issue described in the PR description in a way that is general and consistent with the codebase.

IMPORTANT: This is an interactive process where you will think and issue ONE command, see its result, then think and issue your next command.

For each response:
1. Include a THOUGHT section explaining your reasoning and what you're trying to accomplish
2. Provide exactly ONE bash command to execute

## Important Boundaries
- MODIFY: Regular source code files in the current directory (the repository root, where every command starts)
{boundaries}
- The repository's tests run with `{test_command}` ({baseline}). After you submit, acr-bot runs them itself and decides.

## Recommended Workflow
1. Analyze the codebase by finding and reading relevant files
{workflow}
5. Test edge cases to ensure your fix is robust

## Command Execution Rules
You are operating in an environment where
1. You write a single command
2. The system executes that command in a subshell
3. You see the result
4. You write your next command

Each response should include:
1. A **THOUGHT** section where you explain your reasoning and plan
2. A single bash code block with your command

Format your responses like this:

<format_example>
THOUGHT: Here I explain my reasoning process, analysis of the current situation,
and what I'm trying to accomplish with the command below.

```bash
your_command_here
```
</format_example>

Commands must be specified in a single bash code block:

```bash
your_command_here
```

**CRITICAL REQUIREMENTS:**
- Your response SHOULD include a THOUGHT section explaining your reasoning
- Your response MUST include EXACTLY ONE bash code block
- This bash block MUST contain EXACTLY ONE command (or a set of commands connected with && or ||)
- If you include zero or multiple bash blocks, or no command at all, YOUR RESPONSE WILL FAIL
- Do NOT try to run multiple independent commands in separate blocks in one response
- Directory or environment variable changes are not persistent. Every action is executed in a new subshell.
- However, you can prefix any action with `MY_ENV_VAR=MY_VALUE cd /path/to/working/dir && ...` or write/load environment variables from files
- A command is killed after {command_seconds:.0f} seconds, together with everything it started; nothing you start outlives your command.{network}

Example of a CORRECT response:
<example_response>
THOUGHT: I need to understand the structure of the repository first. Let me check what files are in the current directory to get a better understanding of the codebase.

```bash
ls -la
```
</example_response>

Example of an INCORRECT response:
<example_response>
THOUGHT: I need to examine the codebase and then look at a specific file. I'll run multiple commands to do this.

```bash
ls -la
```

Now I'll read the file:

```bash
cat file.txt
```
</example_response>

If you need to run multiple commands, either:
1. Combine them in one block using && or ||
```bash
command1 && command2 || echo "Error occurred"
```

2. Wait for the first command to complete, see its output, then issue the next command in your following response.

## Environment Details
- You have a full Linux shell environment
- Always use non-interactive flags (-y, -f) for commands
- Avoid interactive tools like vi, nano, or any that require user input

## Useful Command Examples

### Create a new file:
```bash
cat <<'EOF' > newfile.py
import numpy as np
hello = "world"
print(hello)
EOF
```

### Edit files with sed:
```bash
# Replace all occurrences
sed -i 's/old_string/new_string/g' filename.py

# Replace only first occurrence
sed -i 's/old_string/new_string/' filename.py

# Replace first occurrence on line 1
sed -i '1s/old_string/new_string/' filename.py

# Replace all occurrences in lines 1-10
sed -i '1,10s/old_string/new_string/g' filename.py
```

### View file content:
```bash
# View specific lines with numbers
nl -ba filename.py | sed -n '10,20p'
```

### Any other command you want to run
```bash
anything
```

## Submission
When you've completed your work (reading, editing, testing), and cannot make further progress
issue exactly the following command:

```bash
{submit}
```

This command will submit your work.
You cannot continue working (reading, editing, testing) in any way on this task after submitting.
New files you created (reproduction scripts and the like) are left out of the submission{new_tests}, unless you name them after the sentinel: `{submit_naming}`.
</instructions>{history}"""

# The boundaries and workflow when the tests already fail (they show the issue) ...
BOUNDARIES = """- DO NOT MODIFY: Tests, configuration files (pyproject.toml, setup.cfg, etc.), and never: {protected}"""
WORKFLOW = """2. Create a script to reproduce the issue
3. Edit the source code to resolve the issue
4. Verify your fix works by running your script again"""
# ... and when nothing fails yet: the fix is published only with a test that reproduces the
# issue (it fails on the code before the change and passes with it).
REPRODUCE_BOUNDARIES = """- ADD: a test that reproduces the issue, in the repository's own tests ({layout}): it must fail on the code before your change and pass with it. acr-bot publishes your fix only with such a test.
- DO NOT MODIFY: Test configuration (conftest.py, pytest.ini, tox.ini, setup.cfg, pyproject.toml, etc.), the expectations of existing tests, and never: {protected}"""
REPRODUCE_WORKFLOW = """2. Write a test that reproduces the issue in the repository's tests ({layout}), and run it to see it fail
3. Edit the source code to resolve the issue
4. Verify your fix works by running your test again"""
NEW_TESTS = " (except new test files in the repository's tests, {layout}: they are part of it)"

# Said only where it is true: the docker sandbox cuts the network, `sandbox: local` does not.
NO_NETWORK = " There is no network."

HISTORY = """

<earlier_attempts>
Other attempts at this task failed; the repository is back at its original state. Do not repeat them:
{attempts}
</earlier_attempts>"""

# The scaffold's observation, rendered: short output whole, long output as head and tail
# with the count of what was left out (the scaffold cuts at 10,000 characters, 5,000 each
# side; acr-bot at `observation_bytes`, half each side, while the command runs).
OBSERVATION = """<returncode>{returncode}</returncode>
<output>
{output}</output>"""

LONG_OUTPUT = """<returncode>{returncode}</returncode>
<warning>
The output of your last command was too long.
Please try a different command that produces less output.
If you're looking at a file you can try use head, tail or sed to view a smaller number of lines selectively.
If you're using grep or find and it produced too much output, you can use a more selective search pattern.
If you really need to see something from the full command's output, you can redirect output to a file and then search in that file.
</warning><output_head>
{head}
</output_head>
<elided_chars>
{elided} characters elided
</elided_chars>
<output_tail>
{tail}
</output_tail>"""

TIMEOUT = """The last command <command>{command}</command> timed out after {seconds:.0f} seconds and has been killed.
The output of the command was:
 <output>
{output}
</output>
Please try another command and make sure to avoid those requiring interactive input."""

FORMAT_ERROR = """Please always provide EXACTLY ONE action in triple backticks, found {found} actions.

Please format your action in triple backticks as shown in <response_example>.

<response_example>
Here are some thoughts about why you want to perform the action.

```bash
<action>
```
</response_example>

If you have completed your assignment, please consult the first message about how to
submit your solution (you will not be able to continue working on this task after that)."""

REJECTED = """acr-bot ran the tests on your submission and rejected it:
{feedback}
{reverted}
You may continue: fix the problem, then submit again with `echo {sentinel} && git add -A && git diff --cached`."""

REVERTED = """These protected paths were put back as they were, your changes to them are not part of the submission: {paths}"""
