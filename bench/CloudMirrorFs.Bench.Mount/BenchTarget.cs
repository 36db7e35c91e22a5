using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>One of the compared targets: a folder where the workloads create their files, possibly behind a mount.</summary>
internal abstract class BenchTarget
{
    private readonly List<string> _problems = [];

    /// <summary>"raw", "passthrough" or "cmfs": the key in every JSON table.</summary>
    public abstract string Name { get; }

    /// <summary>The folder the workloads use.</summary>
    public abstract string WorkPath { get; }

    /// <summary>Anomalies seen that did not stop the bench (warnings in a daemon's log, an unclean exit).</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_problems)
            {
                return [.. _problems];
            }
        }
    }

    /// <summary>Creates the folders and, for a mount, starts the daemon and waits until the mount answers.</summary>
    public abstract Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Stops the daemon (SIGTERM, then SIGKILL and a lazy unmount); a no-op for a plain folder.</summary>
    public abstract Task StopAsync();

    /// <summary>Fails if the daemon has died.</summary>
    public virtual void EnsureAlive()
    {
    }

    /// <summary>
    /// Lets background work finish after a measurement so it cannot spill into the next one (cmfs: drain the remote).
    /// Returns how long that took, or null if there is nothing to wait for.
    /// </summary>
    public virtual Task<double?> SettleAsync(CancellationToken cancellationToken) => Task.FromResult<double?>(null);

    /// <summary>CPU time the target's daemon has used so far; null for a plain folder.</summary>
    public virtual TimeSpan? DaemonCpu() => null;

    /// <summary>The end of the daemon's output, for a failure report; empty for a plain folder.</summary>
    public virtual string DiagnosticTail() => string.Empty;

    /// <summary>What this target is and how it was set up.</summary>
    public abstract JsonObject Describe();

    protected void AddProblem(string problem)
    {
        lock (_problems)
        {
            if (_problems.Count < 50)
            {
                _problems.Add(problem);
            }
        }
    }
}
