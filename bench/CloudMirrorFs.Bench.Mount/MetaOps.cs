using System.Text.Json;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>Runs the compiled metaops.c helper (see that file for the exact loops).</summary>
internal static class MetaOps
{
    /// <summary>Files per second over <paramref name="files"/> create+write 4 KiB+close+stat+unlink cycles in <paramref name="dir"/>.</summary>
    public static async Task<double> MetaAsync(string binary, string dir, int files, CancellationToken cancellationToken)
    {
        using JsonDocument doc = await RunAsync(binary, "meta", dir, files, cancellationToken);
        return doc.RootElement.GetProperty("filesPerSecond").GetDouble();
    }

    /// <summary>Latency of <paramref name="writes"/> pwrite 4 KiB + fsync pairs on a new <paramref name="file"/>, in microseconds.</summary>
    public static async Task<(double P50, double P99, double Mean, double Max)> FsyncAsync(string binary, string file, int writes, CancellationToken cancellationToken)
    {
        using JsonDocument doc = await RunAsync(binary, "fsync", file, writes, cancellationToken);
        JsonElement r = doc.RootElement;
        return (r.GetProperty("p50us").GetDouble(), r.GetProperty("p99us").GetDouble(), r.GetProperty("meanUs").GetDouble(), r.GetProperty("maxUs").GetDouble());
    }

    private static async Task<JsonDocument> RunAsync(string binary, string mode, string path, int n, CancellationToken cancellationToken)
    {
        ShellResult r = await Shell.CheckAsync(binary, [mode, path, n.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromMinutes(10), cancellationToken);
        try
        {
            return JsonDocument.Parse(r.Stdout);
        }
        catch (JsonException e)
        {
            throw new BenchFailureException($"metaops {mode} printed no JSON: {r.Stdout.Trim()} {r.Stderr.Trim()}", e);
        }
    }
}
