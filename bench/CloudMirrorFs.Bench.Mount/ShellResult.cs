namespace CloudMirrorFs.Bench.Mount;

/// <summary>How a finished child process ended and what it printed.</summary>
internal sealed record ShellResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);
