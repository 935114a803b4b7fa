"""A small PyTorch CNN for Fashion-MNIST, trained briefly and exported to
ONNX: the starting point of examples/from-pytorch (run.sh).

    python3 model.py WORK_DIR [TRAIN_IMAGES]

Trains on the first TRAIN_IMAGES (12,000) of Debian's dataset-fashion-mnist
for one epoch, prints the test accuracy, and writes WORK_DIR/classifier.onnx
(opset 13, the batch axis dynamic). The pixels are p / 255, as cnngen's
idx: reader gives them.
"""
import gzip
import sys

import numpy as np
import torch
import torch.nn as nn

DATA = '/usr/share/datasets/fashion-mnist'


def load(kind):
    images = np.frombuffer(gzip.open(f'{DATA}/{kind}-images-idx3-ubyte.gz').read()[16:], np.uint8)
    labels = np.frombuffer(gzip.open(f'{DATA}/{kind}-labels-idx1-ubyte.gz').read()[8:], np.uint8)
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255)
    return x, torch.from_numpy(labels.astype(np.int64))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def main():
    work = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = load('train')
    tx, ty = load('t10k')
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    for start in range(0, count, 64):
        opt.zero_grad()
        loss = loss_fn(model(x[start:start + 64]), y[start:start + 64])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(tx).argmax(1) == ty).float().mean().item()
    print(f'PyTorch, trained on {count} images: test accuracy {accuracy:.4f}')
    # the softmax in the graph: cnngen's crossentropy then trains from its
    # logits, as PyTorch's CrossEntropyLoss did
    exported = nn.Sequential(model, nn.Softmax(dim=1)).eval()
    torch.onnx.export(exported, tx[:1], f'{work}/classifier.onnx', opset_version=13,
                      input_names=['image'], output_names=['probabilities'],
                      dynamic_axes={'image': {0: 'N'}, 'probabilities': {0: 'N'}})


if __name__ == '__main__':
    main()
