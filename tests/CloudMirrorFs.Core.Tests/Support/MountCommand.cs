using System.Diagnostics;

namespace CloudMirrorFs.Tests.Support;

/// <summary>Runs mount(8) and umount(8) for the tests that need a real file system under a facet; needs root.</summary>
internal static class MountCommand
{
    public static void Run(string command, params string[] args)
    {
        var psi = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command}");
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{command} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Trim()}. The disk tests mount file systems: run the tests as root (sudo), as CI does.");
        }
    }
}
