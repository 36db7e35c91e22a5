using System.CommandLine;
using System.Globalization;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace CloudMirrorFs.Host.Commands;

/// <summary>
/// <c>cmfs resync --facet NAME [--full]</c>: asks for a facet to be resynchronised (only what its dirty map names, or
/// with <c>--full</c> every block) and follows it to the end: a progress bar with bytes, rate and time left on a
/// terminal, plain lines when the output is redirected. A running mount does the work (over the control socket);
/// with none, this process opens the volume and does it.
/// </summary>
internal static class ResyncCommand
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    public static Command Create(CommandContext context, Option<string?> config)
    {
        var facet = new Option<string>("--facet") { Description = "The facet to resynchronise", Required = true };
        var full = new Option<bool>("--full") { Description = "Copy every block, not only those the dirty map names" };
        var timeout = new Option<double?>("--timeout") { Description = "Give up after this many seconds (exit 1); default: wait" };
        var command = new Command("resync", "Resynchronise a facet from a Synchronised local facet, with progress") { facet, full, timeout };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            string name = parse.GetValue(facet)!;
            if (volume.Options.Facets.All(f => f.Name != name))
            {
                await context.Error.WriteLineAsync($"cmfs: --facet {name}: no such facet (the volume has {string.Join(", ", volume.Options.Facets.Select(f => f.Name))})");
                return CmfsCli.UsageError;
            }
            if (!CommandContext.IsInitialised(volume.Options.StateDir))
            {
                await context.Error.WriteLineAsync(CommandContext.NotInitialised(volume.Options));
                return CmfsCli.Failed;
            }
            DateTime deadline = parse.GetValue(timeout) is { } seconds ? DateTime.UtcNow.AddSeconds(seconds) : DateTime.MaxValue;
            var request = new ControlRequest { Verb = "resync", Facet = name, Full = parse.GetValue(full) };
            ControlResponse? live = await ControlClient.TrySendAsync(volume.Options.StateDir, request, cancellationToken, context.Error);
            if (live is not null)
            {
                if (live.ExitCode != CmfsCli.Ok)
                {
                    await context.Error.WriteLineAsync($"cmfs: {live.Error}");
                    return live.ExitCode;
                }
                await context.Error.WriteLineAsync($"resync of '{name}' requested from the running mount");
                return await FollowAsync(context, name, volume.Options.BlockSize, deadline, async ct =>
                    (await ControlClient.TrySendAsync(volume.Options.StateDir, new ControlRequest { Verb = "status" }, ct))?.Status
                        ?? throw new MirrorException(MirrorError.Unavailable, "the running mount went away during the resync"), cancellationToken);
            }
            using IHost host = context.BuildHost(LogLevel.Warning);
            await using MirrorVolume v = await MirrorVolume.OpenAsync(volume.Options, loggerFactory: host.Services.GetRequiredService<ILoggerFactory>(),
                cancellationToken: cancellationToken);
            v.RequestResync(name, request.Full);
            return await FollowAsync(context, name, volume.Options.BlockSize, deadline, _ => Task.FromResult(v.GetStatus()), cancellationToken);
        });
        return command;
    }

    /// <summary>Polls the status until the facet is Synchronised; 0 then, 1 on timeout.</summary>
    internal static async Task<int> FollowAsync(CommandContext context, string name, int blockSize, DateTime deadline,
        Func<CancellationToken, Task<VolumeStatus>> status, CancellationToken cancellationToken)
    {
        long total = 0;
        FacetStatus? last = null;
        bool interactive = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
        async Task<bool> StepAsync(Action<long, long> report)
        {
            last = (await status(cancellationToken)).Facets.Single(f => f.Name == name);
            long remaining = last.DirtyLocations < 0 ? 0 : last.DirtyLocations * blockSize;
            total = Math.Max(total, remaining);
            report(total - remaining, Math.Max(total, 1));
            return last.State == FacetState.Synchronised;
        }
        bool done = false;
        if (interactive)
        {
            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    ProgressTask task = ctx.AddTask($"resync {name}", maxValue: 1);
                    while (!(done = await StepAsync((d, t) => { task.MaxValue = t; task.Value = d; })) && DateTime.UtcNow < deadline)
                    {
                        await Task.Delay(Poll, cancellationToken);
                    }
                    task.Value = task.MaxValue;
                });
        }
        else
        {
            int decile = -1;
            string? reason = null;
            while (!(done = await StepAsync((d, t) =>
            {
                int now = (int)(d * 10 / t);
                if (now != decile)
                {
                    decile = now;
                    context.Error.WriteLine($"resync {name}: {now * 10}% ({Units.FormatSize(d)} of {Units.FormatSize(t)}), {last!.State}");
                }
            })) && DateTime.UtcNow < deadline)
            {
                if (last!.Reason != reason && last.Reason is not null)
                {
                    reason = last.Reason;
                    await context.Error.WriteLineAsync($"resync {name}: {reason}");
                }
                await Task.Delay(Poll, cancellationToken);
            }
        }
        if (done)
        {
            await context.Out.WriteLineAsync($"facet '{name}' is Synchronised ({Units.FormatSize(total)} copied)");
            return CmfsCli.Ok;
        }
        await context.Error.WriteLineAsync($"cmfs: facet '{name}' is still {last!.State} after the timeout ({(last.DirtyLocations < 0 ? "all" : last.DirtyLocations.ToString(CultureInfo.InvariantCulture))} dirty){(last.Reason is null ? "" : $": {last.Reason}")}");
        return CmfsCli.Failed;
    }
}
