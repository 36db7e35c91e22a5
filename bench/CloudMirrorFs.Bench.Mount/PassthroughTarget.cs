using System.Diagnostics;
using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// libfuse's own low-level passthrough example (passthrough_ll, as installed by libfuse3-dev), run in the foreground
/// with its default options over a source folder on the site's file system: the cost of FUSE alone.
/// </summary>
internal sealed class PassthroughTarget(string dir, string binary) : BenchTarget
{
    private ChildProcess? _daemon;
    private string? _mountLine;
    private string? _output;

    public override string Name => "passthrough";

    public string Source { get; } = Path.Combine(dir, "source");

    public string MountPoint { get; } = Path.Combine(dir, "mnt");

    public override string WorkPath => MountPoint;

    private string[] Arguments => ["-f", "-o", $"source={Source}", MountPoint];

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Directory.CreateDirectory(Source);
        _ = Directory.CreateDirectory(MountPoint);
        _daemon = ChildProcess.Start(binary, Arguments, dir);
        var sw = Stopwatch.StartNew();
        while (!Mounts.IsMounted(MountPoint))
        {
            if (_daemon.HasExited)
            {
                throw new BenchFailureException($"passthrough_ll exited with {_daemon.ExitDescription} before mounting:\n{_daemon.Output}");
            }
            if (sw.Elapsed > TimeSpan.FromSeconds(15))
            {
                throw new BenchFailureException($"passthrough_ll did not mount {MountPoint} within 15 s:\n{_daemon.Output}");
            }
            await Task.Delay(50, cancellationToken);
        }
        _mountLine = Mounts.Find(MountPoint);
    }

    public override TimeSpan? DaemonCpu() => _daemon is { HasExited: false } d ? d.CpuTime : null;

    public override void EnsureAlive()
    {
        if (_daemon is { HasExited: true })
        {
            throw new BenchFailureException($"passthrough_ll exited with {_daemon.ExitDescription} during the bench:\n{Shell.Tail(_daemon.Output, 40)}");
        }
    }

    public override async Task StopAsync()
    {
        if (_daemon is not null)
        {
            StopResult stopped = await _daemon.TerminateAsync(TimeSpan.FromSeconds(10));
            if (stopped.Killed)
            {
                AddProblem("passthrough_ll did not exit within 10 s of SIGTERM; killed");
            }
            else if (stopped.AlreadyExited)
            {
                AddProblem($"passthrough_ll had already exited (code {stopped.ExitCode}) when the bench stopped it");
            }
            _output = Shell.Tail(_daemon.Output, 10);
            _daemon.Dispose();
            _daemon = null;
        }
        await Mounts.DetachAsync(MountPoint);
    }

    public override string DiagnosticTail() => _daemon is null ? string.Empty : Shell.Tail(_daemon.Output, 40);

    public override JsonObject Describe() => new()
    {
        ["kind"] = "libfuse example passthrough_ll (low-level API), compiled from /usr/share/doc/libfuse3-dev/examples",
        ["compile"] = Toolchain.PassthroughCompileCommand,
        ["commandLine"] = "passthrough_ll " + string.Join(' ', Arguments),
        ["options"] = new JsonObject
        {
            ["cache"] = "auto (default): neither direct_io nor keep_cache on open, so the kernel drops a file's cached pages at each open",
            ["timeout"] = 1.0,
            ["writeback"] = false,
            ["flock"] = false,
            ["xattr"] = false,
            ["loop"] = "multithreaded (default; -s not given), clone_fd off, thread limits at libfuse's defaults "
                + "(libfuse 3.14 logs \"Ignoring invalid max threads value 4294967295\" for the unset max_idle_threads and keeps its default)",
        },
        ["source"] = Source,
        ["mountPoint"] = MountPoint,
        ["procMounts"] = _mountLine,
        ["daemonOutput"] = _output,
    };
}
