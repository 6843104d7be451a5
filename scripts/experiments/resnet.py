"""A small ResNet of about the LCNN's size, for comparison in screens (not shipped).

Basic residual blocks (two 3x3 conv + batch norm, ReLU, 1x1 projection when the shape
changes) on the same (batch, bands, frames) log-Mel input, with the same mean+max
pooling over time and a one-logit head as ``forensics_scan.model.LCNN``.
"""
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                   nn.BatchNorm2d(c_out)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet(nn.Module):
    def __init__(self, n_bands=80, channels=(16, 24, 32, 32), dropout=0.3):
        super().__init__()
        layers = [nn.Conv2d(1, channels[0], 5, 1, 2, bias=False), nn.BatchNorm2d(channels[0]),
                  nn.ReLU(), nn.MaxPool2d(2)]
        c_in = channels[0]
        for i, c_out in enumerate(channels):
            layers.append(Block(c_in, c_out, 2 if 0 < i < 3 else 1))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        bands = n_bands // 2 // 2 // 2
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * c_in * bands, 32),
                                  nn.ReLU(), nn.Linear(32, 1))

    def forward(self, features):
        x = self.body(features.unsqueeze(1))
        x = torch.cat([x.mean(dim=3), x.amax(dim=3)], dim=1).flatten(1)
        return self.head(x).squeeze(1)
