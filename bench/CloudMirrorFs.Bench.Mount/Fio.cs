using System.Text.Json;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>fio runs and the two numbers taken from its JSON report.</summary>
internal static class Fio
{
    /// <summary>Sequential 1 MiB writes of a new file (removed by the caller between runs).</summary>
    public static string[] SeqWriteArgs(string file, long bytes) =>
        ["--name=seqwrite", $"--filename={file}", "--rw=write", "--bs=1M", $"--size={bytes >> 20}m", "--ioengine=psync", "--output-format=json"];

    /// <summary>Lays out the random-read file once per target (fio's own data pattern).</summary>
    public static string[] LayoutArgs(string file, long bytes) =>
        ["--name=layout", $"--filename={file}", "--rw=write", "--bs=1M", $"--size={bytes >> 20}m", "--ioengine=psync", "--output-format=json"];

    /// <summary>
    /// Warm 4 KiB random reads. --invalidate=0: fio's default (1) drops the file's page cache before the job
    /// (POSIX_FADV_DONTNEED), which would turn the warm read into a cold one on a FUSE mount.
    /// </summary>
    public static string[] RandReadArgs(string file, long bytes, int seconds) =>
        ["--name=randread", $"--filename={file}", "--rw=randread", "--bs=4k", $"--size={bytes >> 20}m", "--time_based", $"--runtime={seconds}",
         "--ioengine=psync", "--invalidate=0", "--output-format=json"];

    /// <summary>
    /// Random 4 KiB writes over the laid-out random-read file for a fixed time (a database's or a VM image's pattern):
    /// not a target of the issue, measured for what a remote's catch-up costs after them (cmfs's drain is timed).
    /// </summary>
    public static string[] RandWriteArgs(string file, long bytes, int seconds) =>
        ["--name=randwrite", $"--filename={file}", "--rw=randwrite", "--bs=4k", $"--size={bytes >> 20}m", "--time_based", $"--runtime={seconds}",
         "--ioengine=psync", "--output-format=json"];

    /// <summary>Runs fio and returns jobs[0] of its JSON report; fails on a non-zero exit or a job error.</summary>
    public static async Task<JsonElement> RunAsync(IReadOnlyList<string> args, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ShellResult r = await Shell.RunAsync("fio", args, timeout, cancellationToken);
        // fio prints its error notes ("fio: pid=..., err=107/...") on stderr or on stdout before the document.
        int start = r.Stdout.IndexOf('{', StringComparison.Ordinal);
        string notes = (r.Stderr.Trim() + "\n" + (start < 0 ? r.Stdout : r.Stdout[..start]).Trim()).Trim();
        if (r.ExitCode != 0 || start < 0)
        {
            throw new BenchFailureException(
                $"`{Shell.Describe("fio", args)}` exited with code {r.ExitCode}{(start < 0 ? " and printed no JSON" : string.Empty)}: {Shell.Tail(notes, 20)}");
        }
        using JsonDocument doc = JsonDocument.Parse(r.Stdout[start..]);
        JsonElement job = doc.RootElement.GetProperty("jobs")[0];
        int error = job.GetProperty("error").GetInt32();
        if (error != 0)
        {
            throw new BenchFailureException($"fio job failed with error {error}: {Shell.Tail(notes, 20)}");
        }
        return job.Clone();
    }

    public static double WriteMBps(JsonElement job) => job.GetProperty("write").GetProperty("bw_bytes").GetDouble() / 1e6;

    public static double ReadIops(JsonElement job) => job.GetProperty("read").GetProperty("iops").GetDouble();

    public static double WriteIops(JsonElement job) => job.GetProperty("write").GetProperty("iops").GetDouble();
}
