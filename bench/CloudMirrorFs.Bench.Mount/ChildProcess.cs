using System.ComponentModel;
using System.Diagnostics;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>A long-running daemon (a FUSE server in the foreground) whose output is kept for failure reports.</summary>
internal sealed class ChildProcess : IDisposable
{
    private const int MaxLines = 5000;
    private readonly Process _process;
    private readonly Queue<string> _lines = new();
    private readonly Lock _lock = new();
    private readonly Action<string>? _onLine;
    private int _dropped;

    private ChildProcess(Process process, Action<string>? onLine)
    {
        _process = process;
        _onLine = onLine;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>User plus system CPU time the process has used so far, all its threads.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>"code N", with the signal spelled out when .NET reports a signal death as 128 + N.</summary>
    public string ExitDescription => ExitCode > 128 && ExitCode < 160 ? $"code {ExitCode} (killed by signal {ExitCode - 128})" : $"code {ExitCode}";

    public string CommandLine { get; private init; } = string.Empty;

    /// <summary>Everything the process printed (stdout and stderr interleaved), the oldest lines dropped past 5000.</summary>
    public string Output
    {
        get
        {
            lock (_lock)
            {
                return (_dropped > 0 ? $"({_dropped} earlier lines dropped)\n" : string.Empty) + string.Join('\n', _lines);
            }
        }
    }

    public static ChildProcess Start(string file, IReadOnlyList<string> args, string workingDirectory, Action<string>? onLine = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        var child = new ChildProcess(new Process { StartInfo = psi }, onLine) { CommandLine = Shell.Describe(file, args) };
        child._process.OutputDataReceived += (_, e) => child.Append(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        try
        {
            child._process.Start();
        }
        catch (Win32Exception e)
        {
            child.Dispose();
            throw new BenchFailureException($"cannot start {file}: {e.Message}", e);
        }
        child._process.StandardInput.Close();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken) => _process.WaitForExitAsync(cancellationToken);

    /// <summary>SIGTERM, then up to <paramref name="grace"/> for the process to exit, then SIGKILL.</summary>
    public async Task<StopResult> TerminateAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return new StopResult(_process.ExitCode, TimeSpan.Zero, AlreadyExited: true, Killed: false);
        }
        var sw = Stopwatch.StartNew();
        _ = Native.Kill(_process.Id, Native.Sigterm);
        using var limit = new CancellationTokenSource(grace);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
            return new StopResult(_process.ExitCode, sw.Elapsed, AlreadyExited: false, Killed: false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            using var after = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(after.Token);
            }
            catch (OperationCanceledException)
            {
                Log.Info($"pid {_process.Id} survived SIGKILL for 10 s");
            }
            return new StopResult(null, sw.Elapsed, AlreadyExited: false, Killed: true);
        }
    }

    public void Dispose() => _process.Dispose();

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            _lines.Enqueue(line);
            if (_lines.Count > MaxLines)
            {
                _ = _lines.Dequeue();
                _dropped++;
            }
        }
        _onLine?.Invoke(line);
    }
}
