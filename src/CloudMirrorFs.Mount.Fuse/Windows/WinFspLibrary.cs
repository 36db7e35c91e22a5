using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32;

namespace CloudMirrorFs.Mount.Windows;

/// <summary>
/// WinFsp's DLL, found at run time (no install-time dependency): the InstallDir registry value names the folder,
/// <c>bin\winfsp-x64.dll</c> (or <c>-a64</c>) is loaded with <see cref="NativeLibrary"/>, and the fsp_fuse3_* exports
/// are called through unmanaged function pointers. The exports are the real entry points behind the header's inline
/// fuse3_* wrappers, so each takes the <see cref="FspFuseEnv"/> first; ours is built once per process and never
/// freed (WinFsp keeps a pointer to it in every file system and in each thread's FUSE context).
/// </summary>
[SupportedOSPlatform("windows")]
internal sealed unsafe class WinFspLibrary
{
    public const string DownloadUrl = "https://winfsp.dev/rel/";

    private static readonly Lock LoadLock = new();
    private static WinFspLibrary? s_loaded;

    private WinFspLibrary(string path, nint handle, FspFuseEnv* env)
    {
        Path = path;
        Env = env;
        New = (delegate* unmanaged[Cdecl]<FspFuseEnv*, WinFspArgs*, Fuse3Operations*, nuint, nint, nint>)Export(handle, path, "fsp_fuse3_new");
        MountFs = (delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, byte*, int>)Export(handle, path, "fsp_fuse3_mount");
        LoopMt = (delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, nint, int>)Export(handle, path, "fsp_fuse3_loop_mt");
        Exit = (delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, void>)Export(handle, path, "fsp_fuse3_exit");
        Unmount = (delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, void>)Export(handle, path, "fsp_fuse3_unmount");
        Destroy = (delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, void>)Export(handle, path, "fsp_fuse3_destroy");
    }

    /// <summary>The DLL loaded.</summary>
    public string Path { get; }

    /// <summary>The environment every call passes first.</summary>
    public FspFuseEnv* Env { get; }

    /// <summary>fsp_fuse3_new(env, args, ops, opsize, data): parses the options, copies the table; null on bad options.</summary>
    public delegate* unmanaged[Cdecl]<FspFuseEnv*, WinFspArgs*, Fuse3Operations*, nuint, nint, nint> New { get; }

    /// <summary>fsp_fuse3_mount(env, f, mountpoint): checks the mount point (FspFileSystemPreflight); 0 or -1.</summary>
    public delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, byte*, int> MountFs { get; }

    /// <summary>
    /// fsp_fuse3_loop_mt(env, f, config): calls init, creates the volume, sets the mount point, starts the dispatcher
    /// threads, then blocks until fsp_fuse3_exit (or Ctrl+C/service stop); config is ignored by WinFsp (null).
    /// </summary>
    public delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, nint, int> LoopMt { get; }

    /// <summary>fsp_fuse3_exit(env, f): signals the loop's event (any thread).</summary>
    public delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, void> Exit { get; }

    /// <summary>fsp_fuse3_unmount(env, f): frees what fsp_fuse3_mount made (only after a successful mount).</summary>
    public delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, void> Unmount { get; }

    /// <summary>fsp_fuse3_destroy(env, f).</summary>
    public delegate* unmanaged[Cdecl]<FspFuseEnv*, nint, void> Destroy { get; }

    /// <summary>Loads WinFsp once per process; a missing or broken install is a <see cref="MountException"/> saying what to do.</summary>
    public static WinFspLibrary Load()
    {
        lock (LoadLock)
        {
            return s_loaded ??= LoadCore();
        }
    }

    private static WinFspLibrary LoadCore()
    {
        string dll = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "winfsp-x64.dll",
            Architecture.Arm64 => "winfsp-a64.dll",
            _ => throw new MountException($"the WinFsp binding needs a 64-bit process (x64 or ARM64), not {RuntimeInformation.ProcessArchitecture}"),
        };
        string? dir = InstallDir();
        if (dir is null)
        {
            throw new MountException($"WinFsp is not installed: install it from {DownloadUrl} (the MSI; the \"Core\" feature is enough), then mount again");
        }
        string path = System.IO.Path.Combine(dir, "bin", dll);
        if (!File.Exists(path))
        {
            throw new MountException($"WinFsp is not installed: {path} is missing (InstallDir {dir}); reinstall it from {DownloadUrl}");
        }
        if (!NativeLibrary.TryLoad(path, out nint handle))
        {
            throw new MountException($"WinFsp is installed at {dir} but {path} could not be loaded; reinstall it from {DownloadUrl}");
        }
        return new WinFspLibrary(path, handle, CreateEnv());
    }

    /// <summary>InstallDir of HKLM\SOFTWARE\WinFsp, which 64-bit Windows keeps in the 32-bit view (WOW6432Node).</summary>
    private static string? InstallDir()
    {
        (RegistryView View, string Key)[] places =
        [
            (RegistryView.Registry64, @"SOFTWARE\WOW6432Node\WinFsp"),
            (RegistryView.Registry32, @"SOFTWARE\WinFsp"),
            (RegistryView.Default, @"SOFTWARE\WinFsp"),
        ];
        foreach ((RegistryView view, string key) in places)
        {
            try
            {
                using RegistryKey root = RegistryKey.OpenBaseKey(RegistryHive.LocalMachine, view);
                using RegistryKey? winfsp = root.OpenSubKey(key);
                if (winfsp?.GetValue("InstallDir") is string dir && dir.Length > 0)
                {
                    return dir;
                }
            }
            catch (Exception e) when (e is System.Security.SecurityException or UnauthorizedAccessException or IOException)
            {
                // unreadable here: try the next place
            }
        }
        return null;
    }

    /// <summary>
    /// The environment FSP_FUSE_ENV_INIT builds for a native program: 'W', the C runtime's malloc and free (WinFsp
    /// frees with them even while a thread exits, so they must be native, not managed callbacks), daemonize and
    /// set_signal_handlers that do nothing (only fuse_main calls them), no path or pid conversion (Cygwin only).
    /// </summary>
    private static FspFuseEnv* CreateEnv()
    {
        if (!NativeLibrary.TryLoad("ucrtbase.dll", out nint crt)
            || !NativeLibrary.TryGetExport(crt, "malloc", out nint malloc)
            || !NativeLibrary.TryGetExport(crt, "free", out nint free))
        {
            throw new MountException("the Universal C Runtime (ucrtbase.dll, part of Windows 10 and later) could not be loaded; WinFsp's FUSE layer allocates with it");
        }
        var env = (FspFuseEnv*)NativeMemory.AllocZeroed((nuint)sizeof(FspFuseEnv));
        env->Environment = FspFuseEnv.Windows;
        env->MemAlloc = malloc;
        env->MemFree = free;
        env->Daemonize = (nint)(delegate* unmanaged[Cdecl]<int, int>)&Daemonize;
        env->SetSignalHandlers = (nint)(delegate* unmanaged[Cdecl]<nint, int>)&SetSignalHandlers;
        return env;
    }

    private static nint Export(nint handle, string path, string name)
        => NativeLibrary.TryGetExport(handle, name, out nint address)
            ? address
            : throw new MountException($"{path} has no {name}: this WinFsp is too old for the FUSE 3 layer; install the current release from {DownloadUrl}");

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static int Daemonize(int foreground) => 0;

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static int SetSignalHandlers(nint session) => 0;
}
