using System.Runtime.InteropServices;
using CloudMirrorFs.Mount.FileSystem;

namespace CloudMirrorFs.Mount.Linux;

/// <summary>A libfuse3 low-level session: mounted at construction, served by libfuse's multithreaded loop.</summary>
internal sealed unsafe partial class LinuxFuseMount : IFuseMount
{
    private const int MntDetach = 2;

    private readonly FuseMountOptions _options;
    private readonly List<nint> _strings = [];
    private FuseLowLevelOps* _ops;
    private FuseArgs* _args;
    private nint _session;
    private int _stopping;
    private bool _mounted;

    private LinuxFuseMount(string mountPoint, FuseMountOptions options)
    {
        MountPoint = mountPoint;
        _options = options;
    }

    public string MountPoint { get; }

    /// <summary>
    /// Whether the kernel checks permissions (default_permissions) or leaves them to us. Without allow_other only the
    /// mounting user's processes can reach the mount at all, and for root, the kernel's mode checks all pass
    /// (CAP_DAC_OVERRIDE) except execute, which the kernel checks on regular files either way; so a private mount by
    /// root skips them, and the two attribute requests per create or unlink they cost (the kernel refetches the parent
    /// directory's mode after every change to it). access(2) then comes to <see cref="MirrorFileSystem.CheckAccess"/>.
    /// Any other mount keeps the kernel's checks.
    /// </summary>
    internal static bool KernelChecksPermissions(FuseMountOptions options, uint owner) => options.AllowOther || owner != 0;

    /// <summary>Creates the session and mounts it (clearing a stale mount a killed instance left at the same folder).</summary>
    public static LinuxFuseMount Mount(MirrorFileSystem fs, string mountPoint, FuseMountOptions options)
    {
        string full = Path.GetFullPath(mountPoint);
        PrepareMountPoint(full);
        var mount = new LinuxFuseMount(full, options);
        try
        {
            mount.Start(fs);
            return mount;
        }
        catch
        {
            mount.Dispose();
            throw;
        }
    }

    private void Start(MirrorFileSystem fs)
    {
        LowLevelOperations.Bind(fs, _options);
        string permissions = KernelChecksPermissions(_options, fs.Uid) ? ",default_permissions" : "";
        string fsName = "cmfs:" + _options.VolumeName.Replace(",", "_", StringComparison.Ordinal).Replace(" ", "_", StringComparison.Ordinal);
        string[] argv =
        [
            "cmfs",
            "-o",
            $"fsname={fsName},subtype=cmfs{permissions}{(_options.AllowOther ? ",allow_other" : "")}",
        ];
        _args = (FuseArgs*)NativeMemory.AllocZeroed((nuint)sizeof(FuseArgs));
        _args->Argc = argv.Length;
        _args->Argv = (byte**)NativeMemory.AllocZeroed((nuint)(sizeof(nint) * (argv.Length + 1)));
        for (int i = 0; i < argv.Length; i++)
        {
            nint s = Marshal.StringToCoTaskMemUTF8(argv[i]);
            _strings.Add(s);
            _args->Argv[i] = (byte*)s;
        }
        _ops = (FuseLowLevelOps*)NativeMemory.AllocZeroed((nuint)sizeof(FuseLowLevelOps));
        LowLevelOperations.Fill(_ops);
        try
        {
            _session = LibFuse.SessionNew(_args, _ops, (nuint)sizeof(FuseLowLevelOps), 0);
        }
        catch (DllNotFoundException e)
        {
            throw new MountException("libfuse3 is not installed: run 'apt-get install -y fuse3' (Debian/Ubuntu)", e);
        }
        if (_session == 0)
        {
            throw new MountException($"{MountPoint}: libfuse refused the mount options ({argv[2]}); see the messages above");
        }
        nint point = Marshal.StringToCoTaskMemUTF8(MountPoint);
        _strings.Add(point);
        if (LibFuse.SessionMount(_session, (byte*)point) != 0)
        {
            throw new MountException($"{MountPoint}: cannot mount: check that /dev/fuse exists (modprobe fuse), that the folder exists and that you may mount there (root, or fusermount3 installed by 'apt-get install -y fuse3')");
        }
        _mounted = true;
    }

    public int Run()
    {
        nint config = LibFuse.LoopConfigCreate();
        try
        {
            LibFuse.LoopConfigSetMaxThreads(config, (uint)Math.Max(2, _options.MaxThreads));
            int rc = LibFuse.SessionLoopMt(_session, config);
            return Volatile.Read(ref _stopping) == 1 ? 0 : rc;
        }
        finally
        {
            LibFuse.LoopConfigDestroy(config);
        }
    }

    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 1 || _session == 0)
        {
            return;
        }
        LibFuse.SessionExit(_session);
        // The loop notices the exit flag after its next request: send one (a lookup of a name that cannot exist).
        string probe = Path.Combine(MountPoint, ".cmfs-stop-" + Guid.NewGuid().ToString("N"));
        var waker = new Thread(() =>
        {
            try
            {
                _ = File.Exists(probe);
            }
            catch (IOException)
            {
                // unmounted meanwhile: the loop has ended anyway
            }
        })
        { IsBackground = true, Name = "cmfs-stop" };
        waker.Start();
    }

    public void Dispose()
    {
        if (_session != 0)
        {
            if (_mounted)
            {
                LibFuse.SessionUnmount(_session);
                _mounted = false;
            }
            LibFuse.SessionDestroy(_session);
            _session = 0;
        }
        if (_ops != null)
        {
            NativeMemory.Free(_ops);
            _ops = null;
        }
        if (_args != null)
        {
            // libfuse may have replaced argv with its own copy (allocated = 1); it is freed by the session.
            NativeMemory.Free(_args);
            _args = null;
        }
        foreach (nint s in _strings)
        {
            Marshal.FreeCoTaskMem(s);
        }
        _strings.Clear();
    }

    /// <summary>
    /// Creates the mount folder if absent. A folder that is still a mount point of a dead FUSE process ("Transport
    /// endpoint is not connected", left by a kill) is detached first; a live mount there is refused.
    /// </summary>
    private static void PrepareMountPoint(string path)
    {
        if (MountPoints.IsMounted(path))
        {
            if (Accessible(path))
            {
                throw new MountException($"{path} is already a mount point (another cmfs or file system is mounted there); unmount it first ('umount {path}')");
            }
            if (Umount2(path, MntDetach) != 0 && !FusermountDetach(path))
            {
                throw new MountException($"{path}: a dead mount is still attached there and could not be detached; run 'fusermount3 -u -z {path}' (or 'umount -l {path}' as root)");
            }
        }
        if (File.Exists(path))
        {
            throw new MountException($"{path}: the mount point is a file; set mount.path to a folder");
        }
        Directory.CreateDirectory(path);
    }

    private static bool Accessible(string path)
    {
        try
        {
            _ = Directory.GetFileSystemEntries(path).Length;
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static bool FusermountDetach(string path)
    {
        try
        {
            using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("fusermount3", ["-u", "-z", path])
            {
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            p!.WaitForExit(10_000);
            return p.HasExited && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Umount2(string target, int flags);
}
