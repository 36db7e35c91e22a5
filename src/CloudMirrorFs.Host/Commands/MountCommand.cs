using System.CommandLine;
using System.Runtime.InteropServices;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;
using CloudMirrorFs.Mount;
using CloudMirrorFs.Mount.FileSystem;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Commands;

/// <summary>
/// <c>cmfs mount</c>: creates the volume's state if absent, mounts the drive in the foreground, replicates to the
/// remote facets, answers <c>status</c> and <c>drain</c> on the control socket, and on SIGINT or SIGTERM unmounts and
/// closes the volume (queue persisted) without waiting for the remotes. A second mount of the same volume is refused
/// by the volume lock, which the OS frees even when the process is killed.
/// </summary>
internal static class MountCommand
{
    private static readonly TimeSpan CloseBudget = TimeSpan.FromSeconds(8);

    public static Command Create(CommandContext context, Option<string?> config)
    {
        var force = new Option<bool>("--force") { Description = "Take remote facets over even when another live cmfs claims them" };
        var command = new Command("mount", "Mount the drive (foreground; Ctrl+C or SIGTERM unmounts)") { force };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume resolved = context.Resolve(parse.GetValue(config), needMount: true);
            Options.VolumeOptions options = resolved.Options with { ForceClaim = parse.GetValue(force) };
            bool existed = CommandContext.IsInitialised(options.StateDir);
            if (resolved.IsEmbeddedDefault && !existed)
            {
                await context.AnnounceEmbeddedDefaultAsync(resolved);
            }
            using IHost host = context.BuildHost(LogLevel.Information);
            ILoggerFactory loggers = host.Services.GetRequiredService<ILoggerFactory>();
            ILogger log = loggers.CreateLogger("cmfs.mount");
            MirrorVolume volume = await MirrorVolume.OpenAsync(options, loggerFactory: loggers, cancellationToken: cancellationToken);
            IFuseMount? mount = null;
            ControlServer? control = null;
            try
            {
                var fs = new MirrorFileSystem(volume, Geteuid(), Getegid(), loggers.CreateLogger("cmfs.fs"));
                await fs.CleanOrphansAsync(cancellationToken);
                control = ControlServer.Start(volume, log);
                mount = FuseMounter.Mount(fs, options.MountPath!, new FuseMountOptions { VolumeName = options.Name });
                string again = resolved.IsEmbeddedDefault ? "" : $" --config {resolved.Source}";
                string self = SelfCommand();
                await context.Out.WriteLineAsync($"cmfs: volume '{options.Name}' mounted at {mount.MountPoint}");
                await context.Out.WriteLineAsync($"  status: {self} status{again}");
                await context.Out.WriteLineAsync($"  wait for the remotes: {self} drain{again}");
                await context.Out.WriteLineAsync($"  stop:   Ctrl+C, or kill {Environment.ProcessId} (SIGTERM)");
                await context.Out.FlushAsync(cancellationToken);

                IFuseMount m = mount;
                using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; m.Stop(); });
                using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; m.Stop(); });
                // The terminal or SSH session went away (on Windows: the console window closed): a clean stop, not the
                // default sudden end that leaves a dead mount point behind. Started under nohup, SIGHUP comes ignored and
                // stays so (.NET leaves an ignored signal alone), as nohup asks.
                using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; m.Stop(); });
                using CancellationTokenRegistration onCancel = cancellationToken.Register(m.Stop);
                var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
                var loop = new Thread(() =>
                {
                    try
                    {
                        done.SetResult(m.Run());
                    }
                    catch (Exception e)
                    {
                        done.SetException(e);
                    }
                })
                { Name = "cmfs-fuse-loop", IsBackground = true };
                loop.Start();
                int rc = await done.Task;
                log.LogInformation("unmounting {MountPoint}", m.MountPoint);
                return rc == 0 ? CmfsCli.Ok : CmfsCli.Failed;
            }
            catch (MountException e)
            {
                await context.Error.WriteLineAsync($"cmfs: {e.Message}");
                return CmfsCli.Failed;
            }
            finally
            {
                mount?.Dispose();
                if (control is not null)
                {
                    await control.DisposeAsync();
                }
                Task close = volume.DisposeAsync().AsTask();
                if (await Task.WhenAny(close, Task.Delay(CloseBudget, CancellationToken.None)) != close)
                {
                    log.LogWarning("the volume is still closing after {Seconds} s (a slow remote, or a large queue being written to its disk); exiting: the next mount recovers what the close did not finish, and nothing acknowledged is lost", CloseBudget.TotalSeconds);
                }
                await context.Out.WriteLineAsync(mount is null
                    ? "cmfs: not mounted; the volume is closed and nothing was changed on the drive"
                    : "cmfs: unmounted; the queue is saved and replication resumes at the next mount");
            }
        });
        return command;
    }

    /// <summary>How the user can run this same cmfs again (the apphost, or 'dotnet path/cmfs.dll').</summary>
    private static string SelfCommand()
    {
        string? process = Environment.ProcessPath;
        // Not Assembly.Location: empty in a single-file cmfs.exe (the Windows installer's), where the process is the app.
        string dll = Path.Combine(AppContext.BaseDirectory, typeof(MountCommand).Assembly.GetName().Name + ".dll");
        return process is not null && Path.GetFileNameWithoutExtension(process) == "dotnet" && dll.Length > 0 ? $"dotnet {dll}" : process ?? "cmfs";
    }

    private static uint Geteuid() => OperatingSystem.IsWindows() ? 0 : ControlEndpoint.Geteuid();

    private static uint Getegid() => OperatingSystem.IsWindows() ? 0 : NativeGetegid();

    [DllImport("libc", EntryPoint = "getegid")]
    private static extern uint NativeGetegid();
}
