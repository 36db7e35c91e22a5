using System.Runtime.InteropServices;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>Everything the bench needs from the machine, checked up front; each gap is named with the Debian package that fills it.</summary>
internal static class Prerequisites
{
    public static void Check(string cmfsDll)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new BenchFailureException("the mount bench runs on Linux only (FUSE, tmpfs, fio)");
        }
        var missing = new List<string>();
        if (!Environment.IsPrivilegedProcess)
        {
            missing.Add("root: the bench mounts its own tmpfs (`mount -t tmpfs`, package mount) and FUSE file systems; run it with sudo");
        }
        if (!File.Exists("/dev/fuse"))
        {
            missing.Add("/dev/fuse: install package fuse3 (apt-get install fuse3) and load the fuse kernel module (modprobe fuse)");
        }
        Tool("fusermount3", "fuse3");
        if (!NativeLibrary.TryLoad("libfuse3.so.3", out IntPtr fuse))
        {
            missing.Add("libfuse3.so.3 (cmfs and passthrough_ll load it): apt-get install libfuse3-3");
        }
        else
        {
            NativeLibrary.Free(fuse);
        }
        Tool("gcc", "gcc");
        Tool("fio", "fio");
        Tool("mount", "mount");
        Tool("umount", "mount");
        Tool("dd", "coreutils");
        Tool("dotnet", "dotnet-sdk-10.0 (or a .NET 10 runtime on PATH)");
        foreach (string file in new[] { "passthrough_ll.c", "passthrough_helpers.h" })
        {
            string path = Path.Combine(Toolchain.ExamplesDir, file);
            if (!File.Exists(path) && !File.Exists(path + ".gz"))
            {
                missing.Add($"{path}: apt-get install libfuse3-dev (its examples are compiled by the bench)");
            }
        }
        if (!File.Exists("/usr/include/fuse3/fuse_lowlevel.h"))
        {
            missing.Add("/usr/include/fuse3/fuse_lowlevel.h: apt-get install libfuse3-dev");
        }
        if (!File.Exists(cmfsDll))
        {
            missing.Add($"{cmfsDll}: build the bench with `dotnet build` (it references src/CloudMirrorFs.Host, whose output is cmfs.dll)");
        }
        if (missing.Count > 0)
        {
            throw new BenchFailureException("missing prerequisites:\n  - " + string.Join("\n  - ", missing.Distinct()));
        }

        void Tool(string name, string package)
        {
            if (Shell.Which(name) is null)
            {
                missing.Add($"{name} not found on PATH: apt-get install {package}");
            }
        }
    }
}
