using System.CommandLine;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Commands;

/// <summary>
/// <c>cmfs verify [--facet NAME] [--repair]</c>: reads and compares every facet's stored bytes with a Synchronised
/// local facet, each difference reported with its file and offset. Exit 0 when clean or all repaired, 1 when
/// differences remain. A running mount does the work (the drive stays in use); with none, this process does.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create(CommandContext context, Option<string?> config)
    {
        var facet = new Option<string?>("--facet") { Description = "Verify this facet only (default: every facet)" };
        var repair = new Option<bool>("--repair") { Description = "Rewrite what differs from a Synchronised facet (object stores: new objects and a new commit)" };
        var command = new Command("verify", "Compare every facet's stored bytes with a Synchronised local facet") { facet, repair };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            string? name = parse.GetValue(facet);
            if (name is not null && volume.Options.Facets.All(f => f.Name != name))
            {
                await context.Error.WriteLineAsync($"cmfs: --facet {name}: no such facet (the volume has {string.Join(", ", volume.Options.Facets.Select(f => f.Name))})");
                return CmfsCli.UsageError;
            }
            if (!CommandContext.IsInitialised(volume.Options.StateDir))
            {
                await context.Error.WriteLineAsync(CommandContext.NotInitialised(volume.Options));
                return CmfsCli.Failed;
            }
            var request = new ControlRequest { Verb = "verify", Facet = name, Repair = parse.GetValue(repair) };
            VerifyReport report;
            ControlResponse? live = await ControlClient.TrySendAsync(volume.Options.StateDir, request, cancellationToken, context.Error);
            if (live is not null)
            {
                if (live.Verify is null)
                {
                    await context.Error.WriteLineAsync($"cmfs: {live.Error ?? "the running instance sent no report"}");
                    return live.ExitCode == CmfsCli.Ok ? CmfsCli.Failed : live.ExitCode;
                }
                report = live.Verify;
            }
            else
            {
                using IHost host = context.BuildHost(LogLevel.Warning);
                await using MirrorVolume v = await MirrorVolume.OpenAsync(volume.Options, loggerFactory: host.Services.GetRequiredService<ILoggerFactory>(),
                    cancellationToken: cancellationToken);
                report = await v.VerifyAsync(name, request.Repair, cancellationToken: cancellationToken);
            }
            foreach (VerifyDifference d in report.Differences)
            {
                string where = d.Offset >= 0 ? $"{d.Path} at offset {d.Offset}" : d.Path.Length > 0 ? d.Path : "(facet)";
                await context.Out.WriteLineAsync($"{d.Facet}: {where}: {d.What}{(d.Repaired ? " (repaired)" : "")}");
            }
            await context.Out.WriteLineAsync(
                $"verify against {report.Reference}: {string.Join(", ", report.Facets)}: {report.BlocksCompared} block(s) compared, {report.BlocksSkipped} skipped as changing, " +
                $"{report.Differences.Count} difference(s), {report.Differences.Count(d => !d.Repaired)} unrepaired");
            return report.Clean ? CmfsCli.Ok : CmfsCli.Failed;
        });
        return command;
    }
}
