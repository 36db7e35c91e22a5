using System.CommandLine;
using System.Globalization;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Commands;

/// <summary>
/// <c>cmfs drain --timeout SECONDS</c>: returns 0 once everything acknowledged before the call is committed on every
/// remote facet (a dirty-map resync included), 1 on timeout. With no running instance it opens the volume and runs
/// the replicators itself until then.
/// </summary>
internal static class DrainCommand
{
    public static Command Create(CommandContext context, Option<string?> config)
    {
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait before giving up (exit 1)", DefaultValueFactory = _ => 300 };
        var command = new Command("drain", "Wait until every remote facet holds everything acknowledged so far") { timeout };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            double seconds = parse.GetValue(timeout);
            if (seconds <= 0 || double.IsNaN(seconds))
            {
                await context.Error.WriteLineAsync("cmfs: --timeout must be a positive number of seconds");
                return CmfsCli.UsageError;
            }
            // The running instance first: it answers on its abstract name even when the state folder's disk is dead.
            ControlResponse? live = await ControlClient.TrySendAsync(volume.Options.StateDir, new ControlRequest { Verb = "drain", TimeoutSeconds = seconds }, cancellationToken, context.Error);
            if (live is null && !CommandContext.IsInitialised(volume.Options.StateDir))
            {
                await context.Error.WriteLineAsync(CommandContext.NotInitialised(volume.Options));
                return CmfsCli.Failed;
            }
            VolumeStatus status;
            bool drained;
            if (live is not null)
            {
                if (live.Status is null)
                {
                    await context.Error.WriteLineAsync($"cmfs: {live.Error ?? "the running instance sent no status"}");
                    return live.ExitCode == CmfsCli.Ok ? CmfsCli.Failed : live.ExitCode;
                }
                drained = live.ExitCode == CmfsCli.Ok;
                status = live.Status;
            }
            else
            {
                using IHost host = context.BuildHost(LogLevel.Warning);
                await using MirrorVolume v = await MirrorVolume.OpenAsync(volume.Options, loggerFactory: host.Services.GetRequiredService<ILoggerFactory>(),
                    cancellationToken: cancellationToken);
                drained = await v.DrainAsync(TimeSpan.FromSeconds(seconds), cancellationToken);
                status = v.GetStatus();
            }
            if (drained)
            {
                await context.Out.WriteLineAsync("drained: every remote facet holds everything acknowledged");
                return CmfsCli.Ok;
            }
            await context.Error.WriteLineAsync($"cmfs: not drained after {seconds.ToString(CultureInfo.InvariantCulture)} s:");
            foreach (FacetStatus f in status.Facets.Where(f => f.Role == Facets.FacetRole.Remote))
            {
                await context.Error.WriteLineAsync($"  {f.Name}: {f.State}, {f.QueuedEntries} queued, {(f.DirtyLocations < 0 ? "all" : f.DirtyLocations.ToString(CultureInfo.InvariantCulture))} dirty{(f.Reason is null ? "" : $" ({f.Reason})")}");
            }
            return CmfsCli.Failed;
        });
        return command;
    }
}
