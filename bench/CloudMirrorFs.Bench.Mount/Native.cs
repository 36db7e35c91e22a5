using System.Runtime.InteropServices;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>The one libc call .NET does not offer: sending SIGTERM (Process.Kill sends SIGKILL).</summary>
internal static partial class Native
{
    public const int Sigterm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
