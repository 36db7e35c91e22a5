namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// How a daemon ended when asked to stop: <see cref="AlreadyExited"/> if it had died before the SIGTERM,
/// <see cref="Killed"/> if it ignored the SIGTERM and took a SIGKILL (then <see cref="ExitCode"/> is null).
/// </summary>
internal sealed record StopResult(int? ExitCode, TimeSpan Elapsed, bool AlreadyExited, bool Killed);
