using System.Diagnostics;
using System.Globalization;

namespace CloudMirrorFs.Tests.Support;

/// <summary>What a file occupies on its disk, as opposed to its length: holes take nothing.</summary>
internal static class Allocation
{
    /// <summary>The bytes allocated to <paramref name="path"/> (st_blocks × 512), from stat(1).</summary>
    public static long BytesOf(string path)
    {
        var psi = new ProcessStartInfo("stat") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-c", "%b", path })
        {
            psi.ArgumentList.Add(a);
        }
        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("could not start stat");
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"stat -c %b {path} failed ({p.ExitCode}): {error.Trim()}");
        }
        return long.Parse(output.Trim(), CultureInfo.InvariantCulture) * 512;
    }
}
