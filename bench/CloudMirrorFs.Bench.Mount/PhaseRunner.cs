using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// Runs one measurement per target per run, the target order rotated every run (raw, passthrough, cmfs; then
/// passthrough, cmfs, raw; ...) so no target always goes first or last. Every measurement is bracketed by liveness
/// checks, and followed by the target's settle step (cmfs: drain), which is timed separately and not part of the metric.
/// </summary>
internal sealed class PhaseRunner(string title, Site site, int runs)
{
    public JsonArray Orders { get; } = [];

    /// <summary>How long each settle step after a timed run took (cmfs drain; not part of the metric).</summary>
    public JsonArray CmfsDrainSeconds { get; } = [];

    /// <summary>
    /// Per daemon target, the CPU seconds its daemon used for each timed run, the settle step included (cmfs: the
    /// replication that finishes after the workload): the work behind each number, which the rates alone hide.
    /// </summary>
    public JsonObject DaemonCpuSeconds { get; } = [];

    public static IReadOnlyList<BenchTarget> Rotate(IReadOnlyList<BenchTarget> targets, int run) =>
        [.. Enumerable.Range(0, targets.Count).Select(i => targets[(i + run) % targets.Count])];

    public async Task RunAsync(Func<BenchTarget, Task<string>> measure, CancellationToken cancellationToken)
    {
        for (int run = 0; run < runs; run++)
        {
            IReadOnlyList<BenchTarget> order = Rotate(site.Targets, run);
            Orders.Add(new JsonArray([.. order.Select(t => (JsonNode?)t.Name)]));
            foreach (BenchTarget t in order)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TimeSpan? cpuBefore = t.DaemonCpu();
                string summary = await OneAsync(t, $"run {run + 1}/{runs}", measure, CmfsDrainSeconds, cancellationToken);
                if (cpuBefore is { } before && t.DaemonCpu() is { } after)
                {
                    if (DaemonCpuSeconds[t.Name] is not JsonArray cpu)
                    {
                        DaemonCpuSeconds[t.Name] = cpu = [];
                    }
                    double seconds = Math.Round((after - before).TotalSeconds, 2);
                    cpu.Add(seconds);
                    summary += $" (daemon CPU {seconds} s)";
                }
                Log.Info($"{title} run {run + 1}/{runs} {t.Name}: {summary}");
            }
        }
    }

    /// <summary>One step on one target outside the timed runs (laying out a file, cleaning up), with the same checks.</summary>
    public async Task OnceAsync(BenchTarget t, string what, Func<BenchTarget, Task<string>> step, CancellationToken cancellationToken)
    {
        string summary = await OneAsync(t, what, step, drains: null, cancellationToken);
        Log.Info($"{title} {what} {t.Name}: {summary}");
    }

    private async Task<string> OneAsync(
        BenchTarget t, string what, Func<BenchTarget, Task<string>> step, JsonArray? drains, CancellationToken cancellationToken)
    {
        try
        {
            t.EnsureAlive();
            string summary = await step(t);
            t.EnsureAlive();
            if (await t.SettleAsync(cancellationToken) is { } settle)
            {
                drains?.Add(settle);
                summary += $" (drain {settle} s)";
            }
            return summary;
        }
        catch (BenchFailureException e)
        {
            try
            {
                // A dead daemon explains the failed step better than the step's own error.
                t.EnsureAlive();
            }
            catch (BenchFailureException dead)
            {
                throw new BenchFailureException($"{title}, {what}, target {t.Name} ({site.Kind}): {dead.Message}\n(the step itself failed with: {e.Message})", e);
            }
            string tail = t.DiagnosticTail();
            if (e.Message.Contains(tail, StringComparison.Ordinal))
            {
                tail = string.Empty;
            }
            throw new BenchFailureException(
                $"{title}, {what}, target {t.Name} ({site.Kind}): {e.Message}{(tail.Length > 0 ? $"\n--- {t.Name} daemon output (tail) ---\n{tail}" : string.Empty)}", e);
        }
    }
}
