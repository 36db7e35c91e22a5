using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// Our drive: <c>dotnet cmfs.dll mount</c> of a volume whose local directory facet, state and folder remote all sit
/// in <paramref name="dir"/>, on the same file system as the other targets.
/// </summary>
internal sealed class CmfsTarget(string dir, string cmfsDll) : BenchTarget
{
    public const string Config = """
        {
          "volume": { "name": "bench", "stateDir": "state" },
          "mount": { "path": "drive" },
          "facets": [
            { "name": "local", "role": "local", "kind": "directory", "path": "local" },
            { "name": "remote", "role": "remote", "kind": "folder", "path": "remote" }
          ]
        }
        """;

    private ChildProcess? _daemon;
    private string? _mountLine;
    private JsonObject? _stop;

    public override string Name => "cmfs";

    public string ConfigPath { get; } = Path.Combine(dir, "cmfs.json");

    public override string WorkPath { get; } = Path.Combine(dir, "drive");

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(ConfigPath, Config, cancellationToken);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _daemon = ChildProcess.Start("dotnet", [cmfsDll, "mount", "--config", ConfigPath], dir, line =>
        {
            if (line.Contains("mounted at", StringComparison.Ordinal))
            {
                _ = ready.TrySetResult();
            }
            // Microsoft.Extensions.Logging's console format: "warn:", "fail:", "crit:" open a record at those levels.
            if (line.StartsWith("warn:", StringComparison.Ordinal) || line.StartsWith("fail:", StringComparison.Ordinal)
                || line.StartsWith("crit:", StringComparison.Ordinal) || line.Contains(" warn: ", StringComparison.Ordinal)
                || line.Contains(" fail: ", StringComparison.Ordinal) || line.Contains(" crit: ", StringComparison.Ordinal))
            {
                AddProblem("cmfs log: " + line.Trim());
            }
        });
        Task exited = _daemon.WaitForExitAsync(cancellationToken);
        Task first = await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60), cancellationToken));
        cancellationToken.ThrowIfCancellationRequested();
        if (first != ready.Task)
        {
            throw new BenchFailureException(
                $"cmfs mount did not come up ({(first == exited ? $"exited with {_daemon.ExitDescription}" : "no \"mounted at\" within 60 s")}):\n{_daemon.Output}");
        }
        _mountLine = Mounts.Find(WorkPath)
            ?? throw new BenchFailureException($"cmfs said it mounted, but {WorkPath} is not in /proc/self/mounts:\n{_daemon.Output}");
    }

    public override TimeSpan? DaemonCpu() => _daemon is { HasExited: false } d ? d.CpuTime : null;

    public override void EnsureAlive()
    {
        if (_daemon is { HasExited: true })
        {
            throw new BenchFailureException($"cmfs mount exited with {_daemon.ExitDescription} during the bench:\n{Shell.Tail(_daemon.Output, 60)}");
        }
    }

    /// <summary><c>cmfs drain</c>: wait until the remote holds everything written, so replication does not overlap the next measurement.</summary>
    public override async Task<double?> SettleAsync(CancellationToken cancellationToken)
    {
        ShellResult r = await Shell.RunAsync("dotnet", [cmfsDll, "drain", "--config", ConfigPath, "--timeout", "300"], TimeSpan.FromSeconds(330), cancellationToken, dir);
        if (r.ExitCode != 0)
        {
            throw new BenchFailureException($"cmfs drain exited with code {r.ExitCode}: {(r.Stdout + r.Stderr).Trim()}\ncmfs mount output:\n{DiagnosticTail()}");
        }
        return Math.Round(r.Elapsed.TotalSeconds, 2);
    }

    public override async Task StopAsync()
    {
        if (_daemon is not null)
        {
            StopResult s = await _daemon.TerminateAsync(TimeSpan.FromSeconds(15));
            _stop = new JsonObject
            {
                ["signal"] = s.AlreadyExited ? "none (had already exited)" : "SIGTERM",
                ["exitCode"] = s.ExitCode,
                ["seconds"] = s.AlreadyExited ? null : Math.Round(s.Elapsed.TotalSeconds, 2),
                ["killedAfter15s"] = s.Killed,
            };
            if (s.Killed)
            {
                AddProblem($"cmfs mount did not exit within 15 s of SIGTERM; killed with SIGKILL:\n{Shell.Tail(_daemon.Output, 30)}");
            }
            else if (s.AlreadyExited)
            {
                AddProblem($"cmfs mount had already exited (code {s.ExitCode}) when the bench stopped it:\n{Shell.Tail(_daemon.Output, 30)}");
            }
            else if (s.ExitCode != 0)
            {
                AddProblem($"cmfs mount exited with code {s.ExitCode} after SIGTERM:\n{Shell.Tail(_daemon.Output, 30)}");
            }
            if (Mounts.IsMounted(WorkPath))
            {
                AddProblem($"{WorkPath} was still mounted after cmfs exited");
            }
            _daemon.Dispose();
            _daemon = null;
        }
        await Mounts.DetachAsync(WorkPath);
    }

    public override string DiagnosticTail() => _daemon is null ? string.Empty : Shell.Tail(_daemon.Output, 60);

    public override JsonObject Describe() => new()
    {
        ["kind"] = "cmfs mount (local directory facet + folder remote, state alongside)",
        ["commandLine"] = "dotnet cmfs.dll mount --config " + ConfigPath,
        ["config"] = JsonNode.Parse(Config),
        ["settle"] = "cmfs drain after every measurement (not timed in the metric)",
        ["procMounts"] = _mountLine,
        ["stop"] = _stop?.DeepClone(),
    };
}
